"""Opening the embedded SQLite database: pragmas, numbered migrations, and the
named queries of `sql/sqlite/queries.sql`."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

from auditlake.errors import Unavailable

_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NAMED = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with full fsync on commit.

    `isolation_level=None` leaves transactions to explicit BEGIN/COMMIT, so a
    group commit is exactly one transaction.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open the database {path}: {exc}") from exc
    return conn


def open_database(path: Path) -> sqlite3.Connection:
    """Create the folder and database if needed and apply pending migrations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[int] = []
    for version, name, script in _migrations():
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


@cache
def query(name: str) -> str:
    """The named statement from `sql/sqlite/queries.sql`."""
    text = _sql_dir().joinpath("queries.sql").read_text()
    parts = _NAMED.split(text)
    named = {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}
    return named[name]


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in _sql_dir().iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match[1]), entry.name, entry.read_text()))
    return sorted(found)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (sqlite3 runs one per execute())."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


def _sql_dir() -> resources.abc.Traversable:
    return resources.files("auditlake.store").joinpath("sql", "sqlite")

"""Opening the embedded SQLite databases: pragmas, numbered migrations, and
named queries, kept in `sql/<schema>/` (`NNNN_name.sql` and `queries.sql`).

Three schemas, one file each: `journal` (the durable event log), `store`
(the search index, derived from the journal and rebuildable) and `keys`.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from auditlake.errors import Unavailable

Schema = Literal["journal", "store", "keys"]
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NAMED = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def connect(path: Path, *, synchronous: str = "FULL", wal: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit BEGIN/COMMIT,
    so a group commit is exactly one transaction)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout = 30000")
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open the database {path}: {exc}") from exc
    return conn


def open_database(path: Path, schema: Schema, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Create the folder and database if needed and apply pending migrations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, synchronous=synchronous)
    migrate(conn, schema)
    return conn


def migrate(conn: sqlite3.Connection, schema: Schema) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, script in _migrations(schema):
            if version in done:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, datetime.now(UTC).isoformat()),
            )
            applied.append(version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


@cache
def query(schema: Schema, name: str) -> str:
    """The named statement from `sql/<schema>/queries.sql`."""
    return _queries(schema)[name]


@cache
def _queries(schema: Schema) -> dict[str, str]:
    parts = _NAMED.split(_sql_dir(schema).joinpath("queries.sql").read_text())
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


def _migrations(schema: Schema) -> list[tuple[int, str, str]]:
    found = []
    for entry in _sql_dir(schema).iterdir():
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


def _sql_dir(schema: Schema) -> resources.abc.Traversable:
    return resources.files("auditlake.sql").joinpath(schema)

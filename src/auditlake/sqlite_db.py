"""Opening the embedded SQLite databases: pragmas, numbered migrations, and
named queries, kept in `sql/sqlite/<schema>/` (`NNNN_name.sql` and
`queries.sql`, read by `auditlake.sql`).

Five schemas, one file each: `journal` (the durable event log and the
consumers' positions), `store` (the search index, derived from the journal
and rebuildable), `keys`, `pollers` (checkpoints and dead letters of the
vendor pollers) and `consumers` (their dead letters).

Every connection goes through APSW, which bundles a current SQLite: the
recorder's index writes cost about a quarter less than on the system library
the `sqlite3` module links (docs/benchmarks.md). One library for the whole
process matters: two copies of SQLite in one process do not see each other's
POSIX locks on the same file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import apsw

from auditlake import sql
from auditlake.errors import Unavailable
from auditlake.files import private_file, private_folder

Schema = Literal["journal", "store", "keys", "pollers", "consumers"]
# Statements shared by tables of the same shape in several schemas.
QueryGroup = Schema | Literal["dead_letters"]
BACKEND = "sqlite"  # its folder under sql/


DbConnection = apsw.Connection
BUSY_TIMEOUT_MS = 30_000
log = logging.getLogger(__name__)


def connect(path: Path, *, synchronous: str = "FULL", wal: bool = True) -> DbConnection:
    """A connection in autocommit mode (transactions are explicit BEGIN/COMMIT,
    so a group commit is exactly one transaction). A new database file is
    made private (0600) first."""
    try:
        if str(path) != ":memory:":
            private_file(path)
        conn = apsw.Connection(str(path))
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except (apsw.Error, OSError) as exc:
        raise Unavailable(f"cannot open the database {path}: {exc}") from exc
    return conn


def open_database(path: Path, schema: Schema, *, synchronous: str = "FULL") -> DbConnection:
    """Create the folder and database if needed and apply pending migrations."""
    private_folder(path.parent)
    conn = connect(path, synchronous=synchronous)
    migrate(conn, schema)
    return conn


def migrate(conn: DbConnection, schema: Schema) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = []
    with write_transaction(conn):  # one process migrates at a time
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, script in migrations(schema):
            if version in done:
                continue
            conn.execute(script).fetchall()  # APSW runs every statement of a script
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, datetime.now(UTC).isoformat()),
            )
            applied.append(version)
    return applied


@contextlib.contextmanager
def write_transaction(conn: DbConnection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` (the write lock, waited for up to the busy
    timeout), `COMMIT` at the end of the block, rolled back on any
    exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        roll_back(conn)
        raise


def roll_back(conn: DbConnection) -> None:
    """Roll back what is still open. SQLite ends the transaction itself on
    some errors (SQLITE_FULL, SQLITE_IOERR); a ROLLBACK then would fail with
    "no transaction is active" and hide the real cause."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except apsw.Error as exc:
            log.warning("rollback failed: %s", exc)


def fetch_all(conn: DbConnection, sql: str, params: apsw.Bindings = ()) -> list[tuple[Any, ...]]:
    """Every row of a query."""
    return conn.execute(sql, params).fetchall()


def scalar(conn: DbConnection, sql: str, params: apsw.Bindings = ()) -> Any:
    """The first column of the first row, or None when there is no row."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def query(schema: QueryGroup, name: str) -> str:
    """The named statement from `sql/sqlite/<schema>/queries.sql`."""
    return sql.statements(BACKEND, schema)[name]


def migrations(schema: Schema) -> list[tuple[int, str, str]]:
    """The schema's migrations as (version, file name, SQL), oldest first."""
    return sql.migrations(BACKEND, schema)

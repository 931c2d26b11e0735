"""Opening PostgreSQL databases: connections, numbered migrations applied
under an advisory lock, and named queries, kept in `sql/postgres/<schema>/`
(`NNNN_name.sql` and `queries.sql`, read by `auditlake.sql`).

The driver is psycopg 3 (the `postgres` extra), imported only here and only
when a PostgreSQL backend is configured. Several processes may start at once
(a restart of every role of a deployment): `migrate` takes a transaction-level
advisory lock per schema, so exactly one of them applies what is pending and
the others find it done. PostgreSQL's DDL is transactional, so a migration
that fails leaves nothing behind: all that was pending is applied, or none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from auditlake import sql
from auditlake.errors import ConfigError, Unavailable

if TYPE_CHECKING:
    import psycopg

BACKEND = "postgres"  # its folder under sql/
CONNECT_TIMEOUT_SECONDS = 10
Migration = tuple[int, str, str]  # (version, file name, SQL)
_PASSWORD = re.compile(r"(password\s*=\s*)\S+|(://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to `dsn` (a libpq connection string or URI).

    Unavailable (transient: the server may come back) when it cannot be
    reached; ConfigError when psycopg is not installed. The DSN's password
    never appears in a message.
    """
    try:
        import psycopg
    except ImportError:  # the lock files install it; a bare `pip install` may not
        raise ConfigError(
            "the PostgreSQL store needs psycopg: pip install 'auditlake[postgres]'"
        ) from None
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {redact(str(exc).strip())}") from None


def redact(text: str) -> str:
    """`text` with any password of a DSN replaced by `***`."""
    return _PASSWORD.sub(lambda m: f"{m[1] or m[2]}***" + ("@" if m[2] else ""), text)


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> list[int]:
    """Apply the schema's pending migrations (`sql/postgres/<schema>/`); the
    versions applied, oldest first."""
    return apply_migrations(conn, schema, migrations(schema))


def apply_migrations(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, pending: Sequence[Migration]
) -> list[int]:
    """Apply those of `pending` that `schema` lacks, in one transaction under
    the schema's advisory lock; the versions applied, oldest first."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"auditlake.{schema}",))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (schema text NOT NULL,"
            " version integer NOT NULL, name text NOT NULL, applied_at timestamptz NOT NULL,"
            " PRIMARY KEY (schema, version))"
        )
        done = {
            row[0]
            for row in conn.execute(
                "SELECT version FROM schema_migrations WHERE schema = %s", (schema,)
            )
        }
        for version, name, script in pending:
            if version in done:
                continue
            conn.execute(script.encode())  # bytes: no %-placeholders, several statements
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s, %s)",
                (schema, version, name, datetime.now(UTC)),
            )
            applied.append(version)
    return applied


def migrations(schema: str) -> list[Migration]:
    """The schema's migrations, oldest first."""
    return sql.migrations(BACKEND, schema)


def query(schema: str, name: str) -> bytes:
    """The named statement from `sql/postgres/<schema>/queries.sql` (bytes:
    what psycopg takes for a statement not written in the code)."""
    return sql.statements(BACKEND, schema)[name].encode()

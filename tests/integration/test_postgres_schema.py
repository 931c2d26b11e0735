"""Every PostgreSQL schema: the migrated database equals its committed
snapshot (tests/fixtures/schema/postgres/<schema>.txt: tables, columns with
their types, nullability and collation, indexes, partitions), and a database
left at any earlier version upgrades to the same schema, applying exactly
the migrations it lacked.

After a deliberate change (a new migration), write the snapshots again with
`AUDITLAKE_WRITE_SCHEMA_SNAPSHOTS=1 .venv/bin/pytest tests/integration/test_postgres_schema.py`
and review their diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from auditlake.postgres_db import apply_migrations, connect, migrate, migrations

SNAPSHOTS = Path(__file__).parents[1] / "fixtures" / "schema" / "postgres"
SCHEMAS = ("store",)


def schema_of(dsn: str) -> str:
    """The database's tables, columns, indexes and partitions as text, in
    name order (the migrations' own bookkeeping table left out)."""
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, format_type(a.atttypid, a.atttypmod),"
            " c.is_nullable, coalesce(c.collation_name, '')"
            " FROM information_schema.columns c"
            " JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_name))::regclass"
            "  AND a.attname = c.column_name"
            " WHERE c.table_schema = 'public' AND c.table_name != 'schema_migrations'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename != 'schema_migrations' ORDER BY indexname"
        ).fetchall()
        partitions = conn.execute(
            "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind IN ('r', 'p')"
            " ORDER BY c.relname"
        ).fetchall()
    lines = [f"column {t}.{c} {kind} null={n} collation={coll}" for t, c, kind, n, coll in columns]
    lines += [f"index {name}: {definition}" for name, definition in indexes]
    lines += [f"partition {child} of {parent}: {bound}" for child, parent, bound in partitions]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_new_database_has_the_committed_schema(schema: str, pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        assert migrate(conn, schema) == [v for v, _, _ in migrations(schema)]
        assert migrate(conn, schema) == []  # a second start finds it done
    got = schema_of(pg_dsn)
    snapshot = SNAPSHOTS / f"{schema}.txt"
    if os.environ.get("AUDITLAKE_WRITE_SCHEMA_SNAPSHOTS"):
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(got)
    assert snapshot.exists(), f"no snapshot {snapshot.name}: write it (see the module docstring)"
    assert got == snapshot.read_text()


@pytest.mark.parametrize(
    ("schema", "version"),
    [(s, v) for s in SCHEMAS for v, _, _ in migrations(s)[:-1]] or [("store", 0)],
)
def test_a_database_at_an_earlier_version_upgrades(schema: str, version: int, pg_dsn: str) -> None:
    every = migrations(schema)
    with connect(pg_dsn) as conn:
        earlier = [m for m in every if m[0] <= version]
        assert apply_migrations(conn, schema, earlier) == [v for v, _, _ in earlier]
        assert migrate(conn, schema) == [v for v, _, _ in every if v > version]
    assert schema_of(pg_dsn) == (SNAPSHOTS / f"{schema}.txt").read_text()

"""Every SQLite schema, per database: the migrated database equals its
committed snapshot (tests/fixtures/schema/<schema>.sql), and a database left
at any earlier version upgrades to the same schema, applying exactly the
migrations it lacked. (Upgrades with rows in them: the journal in
test_conflicting_ids_journal, the store in test_search_equivalence.)

After a deliberate change (a new migration), write the snapshots again with
`AUDITLAKE_WRITE_SCHEMA_SNAPSHOTS=1 .venv/bin/pytest tests/integration/test_schema_migrations.py`
and review their diff.
"""

from __future__ import annotations

import os
import threading
import typing
from pathlib import Path

import pytest

from auditlake.sqlite_db import DbConnection, Schema, connect, migrate, migrations
from auditlake.sqlite_dead_letters import SqliteDeadLetters
from auditlake.store.sqlite_recorder import create_projections

SNAPSHOTS = Path(__file__).parents[1] / "fixtures" / "schema"
SCHEMAS: tuple[Schema, ...] = typing.get_args(Schema)


def schema_of(conn: DbConnection) -> str:
    """The database's tables, indexes and triggers as SQL, in name order
    (the migrations' own bookkeeping table left out)."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY type, name"
    ).fetchall()
    return "".join(f"-- {kind} {name}\n{sql};\n\n" for kind, name, sql in rows)


def at_version(path: Path, schema: Schema, version: int) -> DbConnection:
    """A database as a release whose newest migration was `version` left it."""
    conn = connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for number, name, script in migrations(schema):
        if number <= version:
            conn.execute(script).fetchall()
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (number, name))
    return conn


def migrate_as_opened(conn: DbConnection, schema: Schema) -> list[int]:
    """Migrate as the product opens the schema: the store also gets the
    tables of the vendors' projections."""
    applied = migrate(conn, schema)
    if schema == "store":
        create_projections(conn)
    return applied


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_new_database_has_the_committed_schema(schema: Schema, tmp_path: Path) -> None:
    conn = connect(tmp_path / "new.db")
    migrate_as_opened(conn, schema)
    got = schema_of(conn)
    conn.close()
    snapshot = SNAPSHOTS / f"{schema}.sql"
    if os.environ.get("AUDITLAKE_WRITE_SCHEMA_SNAPSHOTS"):
        snapshot.write_text(got)
    assert snapshot.exists(), f"no snapshot {snapshot.name}: write it (see the module docstring)"
    assert got == snapshot.read_text()


@pytest.mark.parametrize(
    ("schema", "version"),
    [(s, v) for s in SCHEMAS for v in range(1, len(migrations(s)))],
)
def test_a_database_at_an_earlier_version_upgrades(
    schema: Schema, version: int, tmp_path: Path
) -> None:
    conn = at_version(tmp_path / "old.db", schema, version)
    applied = migrate_as_opened(conn, schema)
    assert applied == [n for n, _name, _script in migrations(schema) if n > version]
    assert schema_of(conn) == (SNAPSHOTS / f"{schema}.sql").read_text()
    conn.close()


def test_dead_letters_of_earlier_releases_take_the_shared_shape(tmp_path: Path) -> None:
    consumers = at_version(tmp_path / "consumers.db", "consumers", 1)
    consumers.execute("INSERT INTO dead_letters VALUES ('archiver', 7, 'too big', 'then')")
    migrate(consumers, "consumers")
    letters = SqliteDeadLetters(consumers, threading.Lock())
    [letter] = letters.letters("archiver")
    assert (letter.key, letter.position, letter.reason, letter.item) == ("7", 7, "too big", None)
    assert letters.first_position("archiver") == 7
    consumers.close()

    pollers = at_version(tmp_path / "pollers.db", "pollers", 2)
    pollers.execute(  # one letter from before items had a key, one after
        "INSERT INTO dead_letters (id, source, reason, item, recorded_at, item_key) VALUES"
        " (1, 'cf', 'old', '{\"a\":1}', 'then', NULL), (2, 'cf', 'new', '{\"b\":2}', 'then', 'k2')"
    )
    migrate(pollers, "pollers")
    kept = SqliteDeadLetters(pollers, threading.Lock()).letters("cf")
    assert [(d.key, d.position, d.reason, bytes(d.item or b"")) for d in kept] == [
        ("id:1", None, "old", b'{"a":1}'),
        ("k2", None, "new", b'{"b":2}'),
    ]
    pollers.close()

"""PostgreSQL migrations (`postgres_db`): applied once under the schema's
advisory lock however many processes start at once, all or nothing, and
errors that name the problem without the DSN's password."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from auditlake.errors import Unavailable
from auditlake.postgres_db import apply_migrations, connect

SCRATCH = [
    (1, "0001_things.sql", "CREATE TABLE things (id bigint PRIMARY KEY, label text);"),
    (
        2,
        "0002_more.sql",
        "ALTER TABLE things ADD COLUMN seen timestamptz;\n"
        "CREATE INDEX things_label ON things (label);\n"
        "-- a percent sign in a comment is no placeholder: 100%\n",
    ),
]


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}


def test_migrations_apply_in_order_and_once(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        assert apply_migrations(conn, "scratch", SCRATCH[:1]) == [1]
        assert apply_migrations(conn, "scratch", SCRATCH) == [2]  # an upgrade
        assert apply_migrations(conn, "scratch", SCRATCH) == []
        assert apply_migrations(conn, "other", SCRATCH[:0]) == []  # schemas count apart
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'things'"
        ).fetchall()
    assert {c[0] for c in columns} == {"id", "label", "seen"}
    assert tables(pg_dsn) == {"things", "schema_migrations"}


def test_a_failing_migration_leaves_nothing_behind(pg_dsn: str) -> None:
    broken = [*SCRATCH, (3, "0003_broken.sql", "CREATE TABLE half (id int);\nNOT SQL AT ALL;")]
    with connect(pg_dsn) as conn, pytest.raises(psycopg.errors.SyntaxError):
        apply_migrations(conn, "scratch", broken)
    assert tables(pg_dsn) == set()  # not even the bookkeeping table
    with connect(pg_dsn) as conn:
        assert apply_migrations(conn, "scratch", SCRATCH) == [1, 2]


def _migrate_in_a_process(dsn: str, done: multiprocessing.Queue[list[int]]) -> None:
    with connect(dsn) as conn:
        done.put(apply_migrations(conn, "scratch", SCRATCH))


def test_processes_starting_at_once_apply_each_migration_once(pg_dsn: str) -> None:
    context = multiprocessing.get_context("spawn")
    done: multiprocessing.Queue[list[int]] = context.Queue()
    workers = [context.Process(target=_migrate_in_a_process, args=(pg_dsn, done)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = sorted(done.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert results == [[], [], [], [1, 2]]  # one applied both, three found them done
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (2,)


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 port=1 user=postgres password=hunter2 dbname=x",
        "postgresql://postgres:hunter2@127.0.0.1:1/x",
    ],
)
def test_an_unreachable_server_is_unavailable_and_the_password_is_not_shown(dsn: str) -> None:
    with pytest.raises(Unavailable, match="cannot connect to PostgreSQL") as caught:
        connect(dsn)
    assert "hunter2" not in caught.value.message
    assert caught.value.transient

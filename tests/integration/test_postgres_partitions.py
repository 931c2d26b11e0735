"""Partitions of the PostgreSQL store's `events` table made ahead of time:
rows the default partition already held for a range move into the new
partition in the same transaction, and nothing is lost or doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from auditlake.postgres_db import connect, migrate
from auditlake.store.postgres_partitions import ensure_partitions, partitions_around

NOVEMBER = datetime(2026, 11, 15, tzinfo=UTC)


def add_events(conn: psycopg.Connection[tuple[object, ...]], *moments: datetime) -> None:
    for seq, moment in enumerate(moments, start=1):
        conn.execute(
            "INSERT INTO events (seq, tenant, id, action, occurred_at, received_at, source,"
            " caller, outcome, version, targets, metadata, words, body) VALUES (%s, 'acme', %s,"
            " 'x', %s, %s, 'api', 'key:t', 'success', 1, '[]', '{}', '', '\\x7b7d')",
            (seq, f"e{seq}", moment, moment),
        )


def where(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1"
        ).fetchall()
    return {str(table): int(count) for table, count in rows}


def test_rows_in_the_default_partition_move_into_a_new_partition(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        migrate(conn, "store")
        conn.commit()
        with conn.transaction():
            late, early = datetime(2026, 12, 2, tzinfo=UTC), datetime(1999, 1, 1, tzinfo=UTC)
            add_events(conn, NOVEMBER, NOVEMBER + timedelta(days=10), late, early)
        wanted = partitions_around(NOVEMBER, "month", ahead=1, behind=0)
        assert ensure_partitions(conn, wanted) == ["events_2026_11", "events_2026_12"]
        assert ensure_partitions(conn, wanted) == []  # a second start finds them
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'events_2026_11'"
        ).fetchone()
    assert where(pg_dsn) == {"events_2026_11": 2, "events_2026_12": 1, "events_default": 1}
    assert indexes == (4,)  # the parent's indexes, made for the new partition too


def test_a_new_day_partition_takes_new_rows(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        migrate(conn, "store")
        conn.commit()
        ensure_partitions(conn, partitions_around(NOVEMBER, "day", ahead=1, behind=1))
        with conn.transaction():
            add_events(conn, NOVEMBER + timedelta(hours=5), NOVEMBER + timedelta(days=3))
    assert where(pg_dsn) == {"events_2026_11_15": 1, "events_default": 1}

"""The range partitions of the PostgreSQL store's `events` table, by
`occurred_at`: one per UTC day or month (`[store.postgres] partition`),
created ahead of time, with `events_default` for whatever falls outside
them (an event from years ago, a clock in the far future).

A partition created for a range the default partition already holds rows of
would fail (PostgreSQL checks the default partition), so `ensure_partitions`
builds the new table, moves those rows into it and attaches it, in one
transaction: no row is ever in two places or in none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    import psycopg

Period = Literal["day", "month"]
PARENT = "events"
DEFAULT = "events_default"


class Partition(NamedTuple):
    """One partition: its table name and its range [start, end) in UTC."""

    name: str
    start: datetime
    end: datetime


def partition_of(moment: datetime, period: Period) -> Partition:
    """The partition that holds `moment` (any offset; naive means UTC)."""
    when = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if period == "day":
        start = datetime(when.year, when.month, when.day, tzinfo=UTC)
        return Partition(f"{PARENT}_{start:%Y_%m_%d}", start, start + timedelta(days=1))
    start = datetime(when.year, when.month, 1, tzinfo=UTC)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    return Partition(f"{PARENT}_{start:%Y_%m}", start, end)


def partitions_around(now: datetime, period: Period, *, ahead: int, behind: int) -> list[Partition]:
    """The partition of `now`, the `behind` before it and the `ahead` after
    it, oldest first."""
    current = partition_of(now, period)
    found = [current]
    for _ in range(behind):
        found.insert(0, partition_of(found[0].start - timedelta(microseconds=1), period))
    for _ in range(ahead):
        found.append(partition_of(found[-1].end, period))
    return found


def ensure_partitions(
    conn: psycopg.Connection[tuple[object, ...]], wanted: Iterable[Partition]
) -> list[str]:
    """Create those of `wanted` that do not exist yet, each with the rows of
    its range that the default partition held; the names created."""
    created = []
    for partition in wanted:
        with conn.transaction():
            exists = conn.execute("SELECT to_regclass(%s)", (partition.name,)).fetchone()
            if exists is not None and exists[0] is not None:
                continue
            _create(conn, partition)
        created.append(partition.name)
    return created


def _create(conn: psycopg.Connection[tuple[object, ...]], partition: Partition) -> None:
    from psycopg import sql

    table, bounds = sql.Identifier(partition.name), (partition.start, partition.end)
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
        table, sql.Identifier(PARENT)))  # fmt: skip
    conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE occurred_at >= %s AND occurred_at < %s"
            " RETURNING *) INSERT INTO {} SELECT * FROM moved"
        ).format(sql.Identifier(DEFAULT), table),
        bounds,
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(PARENT), table, sql.Literal(partition.start), sql.Literal(partition.end)
        )
    )

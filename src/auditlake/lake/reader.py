"""Searches that reach into the lake: the same `Query` the hot store answers,
run over a tenant's Parquet partitions.

The lake's keyset is (`occurred_us`, `id`): the order rows have in every
file, and one that needs no journal sequence number (the hot store's
`Position`), which the lake does not keep. A search lists the tenant's
partitions (in both layouts while `lake.migrate` moves a legacy lake: an
hour in both is read from both, each id once), drops the hours that cannot
hold a match (outside the time filters, the hot store's boundary or the
page's resume point), and walks the rest in the query's order, in groups of
1, 2, 4, ... files, until it has one row more than the page needs: so a
page reads few files more than the filters need, and knows whether another
page exists.

Over a group's files DuckDB applies the filters to one Arrow table, with bound
parameters only. The `q` words are checked in Python with the reference test
of `core.query.matches`, on events rebuilt from the candidate rows, so `q`
means exactly what it means in every other backend.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from auditlake.core.event import Event, to_micros
from auditlake.core.query import (
    SEARCH_CPU_SECONDS,
    Filters,
    Query,
    invalid_param,
    matches,
    too_costly,
)
from auditlake.core.words import search_words
from auditlake.errors import InvalidInput
from auditlake.lake.layout import HOUR_US, event_from_row, read_table, unique_rows
from auditlake.lake.paths import hour_start, legacy_tenant_folder, moved_path, tenant_folder

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from auditlake.lake.objects import ObjectStore

_TABLE = "lake_hour"
# A column added to each group's table so DuckDB answers with row numbers and
# the rows themselves come from pyarrow (exact types, no timezone round trip).
_ROW = "_lake_row"
# Rows rebuilt into events at a time when `q` is checked in Python: a page
# that fills early never rebuilds the rest of a busy hour.
_Q_CHUNK = 512
# A search reads the hours in groups of 1, 2, 4, ... files, one DuckDB query
# per group: a page that fills in the first hour reads one file, and a sparse
# filter does not pay a query per file. A group stops growing at 16 files or
# once it holds 200,000 rows (a few hundred MB decoded), whichever is first.
_MAX_GROUP_FILES = 16
_MAX_GROUP_ROWS = 200_000


class LakePosition(msgspec.Struct, frozen=True, array_like=True):
    """Where a lake page ended: the sort key of its last event."""

    occurred_us: int
    id: str


class LakePage(msgspec.Struct, frozen=True):
    """One page of a lake search; `next_after` is set iff more events match."""

    events: list[Event]
    next_after: LakePosition | None = None


class _Hour(msgspec.Struct, frozen=True):
    """One hour of the tenant: its partition file (and, until `lake.migrate`
    has moved it, the legacy layout's file of the hour)."""

    start_us: int
    paths: tuple[str, ...]


class _Budget(msgspec.Struct, frozen=True):
    """The CPU time (of the searching thread) a search may still take."""

    deadline: float  # time.thread_time() when it is spent
    cpu_seconds: float

    def check(self) -> None:
        """Stop the search with `too_costly` once the budget is spent."""
        if time.thread_time() > self.deadline:
            raise too_costly(self.cpu_seconds)


class _Window(msgspec.Struct, frozen=True):
    """The `occurred_us` range [low, high) a search can still return."""

    low: int | None
    high: int | None

    def is_empty(self) -> bool:
        """True when no moment is inside the window."""
        return self.low is not None and self.high is not None and self.low >= self.high

    def overlaps(self, hour: _Hour) -> bool:
        """Whether the hour's file can hold a row of the window."""
        return (self.high is None or hour.start_us < self.high) and (
            self.low is None or hour.start_us + HOUR_US > self.low
        )


class LakeReader:
    """Searches over the lake's Parquet partitions in an `ObjectStore`.

    Thread-safe: the reader keeps one in-memory DuckDB (opening one costs
    about 25 ms, more than a typical page) and each search works on its own
    cursor of it, whose registered tables no other search sees.
    """

    def __init__(self, objects: ObjectStore, *, cpu_seconds: float = SEARCH_CPU_SECONDS) -> None:
        self.objects = objects
        self._cpu_seconds = cpu_seconds
        self._duckdb: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def search(
        self, query: Query, *, after: LakePosition | None = None, before_us: int | None = None
    ) -> LakePage:
        """At most `query.limit` events of `query.tenant` matching the filters,
        in (`occurred_us`, `id`) order ascending or descending per `query.order`.

        `after` is where the previous lake page ended (`query.after` is the hot
        store's position and is ignored here). `before_us`, when given, keeps
        only events with `occurred_us < before_us`: the moment from which the
        hot store answers instead. Raises InvalidInput (422,
        `core.query.too_costly`) once the search has taken `cpu_seconds` of
        CPU time.
        """
        if query.limit < 1:
            raise InvalidInput("limit must be at least 1", [invalid_param("limit")])
        q = query.filters.q
        window = _window(query, after, before_us)
        if window.is_empty() or (q is not None and not search_words(q)):
            return LakePage([])  # `q` without a word matches nothing, as in `matches`
        hours = [h for h in self._hours(query.tenant) if window.overlaps(h)]
        if query.order == "desc":
            hours.reverse()
        sql, params = _select(query, after, before_us)
        wanted = query.limit + 1  # one more than the page: tells if another page exists
        found: list[Event] = []
        budget = _Budget(time.thread_time() + self._cpu_seconds, self._cpu_seconds)
        with self._cursor() as con:
            at, size = 0, 1
            while at < len(hours) and len(found) < wanted:
                budget.check()
                tables, at = self._read_group(hours, at, size)
                if tables:
                    table = _numbered(tables)
                    room = wanted - len(found)
                    found += _search(con, table, sql, params, q, room, budget)
                size = min(size * 2, _MAX_GROUP_FILES)
        return _page(found, query.limit)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one search, on the reader's database."""
        with self._lock:
            if self._duckdb is None:
                import duckdb

                self._duckdb = duckdb.connect()
            return self._duckdb.cursor()

    def _hours(self, tenant: str) -> list[_Hour]:
        """The tenant's partition files with their hours, oldest first.

        The legacy folder is listed first: a legacy file gone by then was
        merged into the layout's file before it was deleted, so the layout's
        listing that follows has that file. It is listed by every search
        (one more LIST, of a folder that is usually empty): an older version
        may still write there during an upgrade, and its file must be found
        before the next move takes it."""
        found: dict[int, list[str]] = defaultdict(list)
        self._add_hours(found, tenant, legacy=True)
        self._add_hours(found, tenant, legacy=False)
        return [_Hour(start, tuple(paths)) for start, paths in sorted(found.items())]

    def _add_hours(self, found: dict[int, list[str]], tenant: str, *, legacy: bool) -> int:
        """Add the tenant's partition files of one layout to `found` by hour
        (after those already there); how many."""
        folder = legacy_tenant_folder(tenant) if legacy else tenant_folder(tenant)
        added = 0
        for path in self.objects.list(folder):
            rest = path[len(folder) :] if path.startswith(folder) else ""
            start = hour_start(rest, legacy=legacy)
            if start is not None:
                found[start].append(path)
                added += 1
        return added

    def _read_group(self, hours: list[_Hour], at: int, size: int) -> tuple[list[pa.Table], int]:
        """The tables of up to `size` files from `hours[at]` on, fewer once
        they hold `_MAX_GROUP_ROWS` rows; and where the next group starts."""
        tables: list[pa.Table] = []
        rows = 0
        while at < len(hours) and len(tables) < size and rows < _MAX_GROUP_ROWS:
            table = self._read_hour(hours[at])
            at += 1
            if table is not None:
                tables.append(table)
                rows += table.num_rows
        return tables, at

    def _read_hour(self, hour: _Hour) -> pa.Table | None:
        """The hour's rows, each id once; None when its files are gone.

        A legacy file is read before the layout's: if the migration deletes
        it in between, its rows are in the layout's file by then."""
        tables = []
        paths = list(hour.paths)
        for path in paths:
            stored = self.objects.get(path)
            moved = moved_path(path) if stored is None else None
            if moved is not None and moved not in paths:
                paths.append(moved)  # moved since the listing: read where it went
            if stored is not None:  # else removed since the listing
                tables.append(read_table(stored[0]))
        if len(tables) < 2:
            return tables[0] if tables else None
        import pyarrow as pa

        return unique_rows(pa.concat_tables(tables))


def _search(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    sql: str,
    params: list[object],
    q: str | None,
    room: int,
    budget: _Budget,
) -> list[Event]:
    """Up to `room` matching events of `table` (numbered rows), in order."""
    con.register(_TABLE, table)
    try:
        if q is None:
            picked = con.execute(sql + " LIMIT ?", [*params, room]).fetchall()
        else:  # the word test runs in Python, so any candidate may be needed
            picked = con.execute(sql, params).fetchall()
    finally:
        con.unregister(_TABLE)
    rows = [int(i) for (i,) in picked]
    if q is None:
        return _events(table, rows)
    return _with_words(table, rows, q, room, budget)


def _window(query: Query, after: LakePosition | None, before_us: int | None) -> _Window:
    """The time range left by the filters, the hot store's boundary and `after`."""
    low, high = query.filters.since_us, _least(query.filters.until_us, before_us)
    if after is not None and query.order == "asc":
        # Rows at after.occurred_us with a greater id are still to come.
        low = after.occurred_us if low is None else max(low, after.occurred_us)
    elif after is not None:
        high = _least(high, after.occurred_us + 1)
    return _Window(low, high)


def _least(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _select(
    query: Query, after: LakePosition | None, before_us: int | None
) -> tuple[str, list[object]]:
    """The row numbers of a group's matches in the query's order, with the
    values to bind. Every user value is a parameter, never SQL text."""
    conditions, params = _conditions(query.filters, before_us)
    conditions.append("tenant = ?")  # a misplaced file must not leak another tenant
    params.append(query.tenant)
    direction = "ASC" if query.order == "asc" else "DESC"
    if after is not None:
        beyond = ">" if query.order == "asc" else "<"
        conditions.append(
            f"(epoch_us(occurred_at) {beyond} ? OR (epoch_us(occurred_at) = ? AND id {beyond} ?))"
        )
        params += [after.occurred_us, after.occurred_us, after.id]
    sql = (
        f"SELECT {_ROW} FROM {_TABLE} WHERE {' AND '.join(conditions)}"
        f" ORDER BY occurred_at {direction}, id {direction}"
    )
    return sql, params


def _conditions(filters: Filters, before_us: int | None) -> tuple[list[str], list[object]]:
    """SQL for every filter but `q`, with the semantics of `core.query.matches`.

    A NULL column never equals a value, as a missing actor never matches an
    actor filter there; `starts_with` is a plain prefix test (LIKE would read
    `%` and `_` in the prefix as wildcards).
    """
    checks: list[tuple[str, object]] = [
        ("action = ?", filters.action),
        ("starts_with(action, ?)", filters.action_prefix),
        ("actor_id = ?", filters.actor_id),
        ("actor_type = ?", filters.actor_type),
        ("list_contains([t.id FOR t IN targets], ?)", filters.target_id),
        ("list_contains([t.type FOR t IN targets], ?)", filters.target_type),
        ("outcome = ?", filters.outcome),
        ("source = ?", filters.source),
        # epoch_us reads the instant itself, whatever the session's time zone.
        ("epoch_us(occurred_at) >= ?", filters.since_us),
        ("epoch_us(occurred_at) < ?", filters.until_us),
        ("epoch_us(occurred_at) < ?", before_us),
    ]
    wanted = [(sql, value) for sql, value in checks if value is not None]
    return [sql for sql, _ in wanted], [value for _, value in wanted]


def _numbered(tables: list[pa.Table]) -> pa.Table:
    """Partition files' tables as one, with row numbers."""
    import pyarrow as pa

    table = pa.concat_tables(tables)
    return table.append_column(_ROW, pa.array(range(table.num_rows), pa.int64()))


def _events(table: pa.Table, rows: list[int]) -> list[Event]:
    """The events of the given rows of `table`, in that order."""
    if not rows:
        return []
    return [event_from_row(r) for r in table.take(rows).drop_columns([_ROW]).to_pylist()]


def _with_words(
    table: pa.Table, rows: list[int], q: str, room: int, budget: _Budget
) -> list[Event]:
    """Up to `room` events of the candidate rows whose text has every word of `q`."""
    words = Filters(q=q)
    found: list[Event] = []
    for chunk in _chunks(rows, _Q_CHUNK):
        budget.check()
        for event in _events(table, chunk):
            if matches(event, to_micros(event.occurred_at), words):
                found.append(event)
                if len(found) == room:
                    return found
    return found


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _page(found: list[Event], limit: int) -> LakePage:
    """The first `limit` events, and where the next page starts if there is one."""
    events = found[:limit]
    if len(found) <= limit:
        return LakePage(events)
    last = events[-1]
    return LakePage(events, LakePosition(to_micros(last.occurred_at), last.id))

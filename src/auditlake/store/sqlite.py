"""Searching the embedded store: the recorder's index in the store database,
joined to event bodies in the journal database (attached as `journal`).
Reads run in WAL mode beside the writers, each thread on its own connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from auditlake.core.query import SEARCH_CPU_SECONDS, Filters, Position, Query, too_costly
from auditlake.core.words import search_words
from auditlake.sqlite_db import DbConnection, connect, fetch_all, query, scalar
from auditlake.store.base import Page

# Below this many events for a target_id, a search fetches them by seq.
FEW_TARGETS = 2000
# How often (in SQLite VM steps, about 0.1 ms here) a search checks its budget.
_BUDGET_CHECK_STEPS = 1000


class SqliteStore:
    """`EventStore` over the embedded store and journal databases."""

    def __init__(
        self, store_path: Path, journal_path: Path, *, cpu_seconds: float = SEARCH_CPU_SECONDS
    ) -> None:
        self._cpu_seconds = cpu_seconds
        self._store_path = store_path
        self._journal_path = journal_path
        self._local = threading.local()
        self._all: list[DbConnection] = []
        self._lock = threading.Lock()

    def get(self, tenant: str, event_id: str) -> bytes | None:
        """The stored JSON of one event of this tenant, or None."""
        body = scalar(self._conn(), query("store", "get_event"), (tenant, event_id))
        return None if body is None else bytes(body)

    def search(self, q: Query) -> Page:
        """One page of matching events, ordered by (occurred_at, seq).

        Raises InvalidInput (422, `core.query.too_costly`) when the search
        takes more than its CPU budget (`cpu_seconds`, 1 s by default).
        """
        conn = self._conn()
        with _budget(conn, self._cpu_seconds):
            sql, params = build_search(q, few_targets=self._few_targets(conn, q))
            rows = fetch_all(conn, sql, params)
        events = [bytes(row[0]) for row in rows[: q.limit]]
        more = len(rows) > q.limit
        last = rows[q.limit - 1] if more else None
        return Page(events, Position(last[1], last[2]) if last else None)

    def _few_targets(self, conn: DbConnection, q: Query) -> bool:
        """Whether the target_id filter matches so few events that fetching them
        by seq and sorting beats walking the tenant's time index."""
        if q.filters.target_id is None:
            return False
        count = scalar(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM event_targets "
            "WHERE tenant = ? AND target_id = ? LIMIT ?)",
            (q.tenant, q.filters.target_id, FEW_TARGETS),
        )
        return int(count) < FEW_TARGETS

    def ping(self) -> None:
        """Raise if the database cannot be read."""
        conn = self._conn()
        conn.execute("SELECT 1 FROM event_index LIMIT 1").fetchall()
        conn.execute("SELECT 1 FROM journal.events LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def _conn(self) -> DbConnection:
        conn: DbConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._store_path, wal=False)
            conn.execute("ATTACH DATABASE ? AS journal", (str(self._journal_path),))
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn


@contextmanager
def _budget(conn: DbConnection, cpu_seconds: float) -> Iterator[None]:
    """Interrupt the statements run inside after `cpu_seconds` of this
    thread's CPU time, as a `too_costly` error. (A step inside SQLite that
    never returns to its VM, such as the merge of one prefix term's
    postings, runs to its end first: the cap on `q` words bounds those.)"""
    deadline = time.thread_time() + cpu_seconds
    conn.set_progress_handler(lambda: time.thread_time() > deadline, _BUDGET_CHECK_STEPS)
    try:
        yield
    except apsw.InterruptError:
        raise too_costly(cpu_seconds) from None
    finally:
        conn.set_progress_handler(None)


def build_search(q: Query, *, few_targets: bool = False) -> tuple[str, list[Any]]:
    """The SELECT for one page (one row more than the limit, to know if more exist).

    With `few_targets`, the page is built from the target's events by seq
    instead of along a time index.
    """
    f = q.filters
    where: list[str] = ["e.tenant = ?"]
    params: list[Any] = [q.tenant]
    for name, equal in f.equalities():
        where.append(f"e.{name} = ?")
        params.append(equal)
    if (bounds := f.action_range()) is not None:
        where.append("e.action >= ? AND e.action < ?")
        params += bounds
    if f.since_us is not None:
        where.append("e.occurred_us >= ?")
        params.append(f.since_us)
    if f.until_us is not None:
        where.append("e.occurred_us < ?")
        params.append(f.until_us)
    for column, value in (("target_id", f.target_id), ("target_type", f.target_type)):
        if value is not None:
            where.append(
                f"e.seq IN (SELECT seq FROM event_targets WHERE tenant = ? AND {column} = ?)"
            )
            params += [q.tenant, value]
    if f.q is not None:
        where.append("e.seq IN (SELECT rowid FROM events_text WHERE events_text MATCH ?)")
        params.append(fts_expression(f.q))
    descending = q.order == "desc"
    if q.after is not None:
        where.append(f"(e.occurred_us, e.seq) {'<' if descending else '>'} (?, ?)")
        params += [q.after.occurred_us, q.after.seq]
    direction = "DESC" if descending else "ASC"
    sql = (
        "SELECT j.body, e.occurred_us, e.seq "
        f"FROM event_index AS e {'NOT INDEXED' if few_targets else 'INDEXED BY ' + _index_for(f)} "
        "JOIN journal.events AS j ON j.seq = e.seq "
        "WHERE "
        + " AND ".join(where)
        + f" ORDER BY e.occurred_us {direction}, e.seq {direction} LIMIT ?"
    )
    params.append(q.limit + 1)
    return sql, params


def _index_for(f: Filters) -> str:
    """The index that serves the most selective equality filter in time order.

    Named explicitly because, without statistics, SQLite may prefer the plain
    time index once a cursor bound and a time range both apply.
    """
    if f.action is not None:
        return "event_index_tenant_action_time"
    if f.actor_id is not None:
        return "event_index_tenant_actor_time"
    return "event_index_tenant_time"


def fts_expression(text: str) -> str:
    """Every word of `text` must appear (as a word prefix), whatever its
    punctuation; words folded as the index holds them (`core.words`)."""
    words = search_words(text)
    if not words:
        return '""'
    return " AND ".join(f'"{word}"*' for word in words)

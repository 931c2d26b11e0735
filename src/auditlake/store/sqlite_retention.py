"""Retention of the embedded hot store: events older than their tenant's
retention leave the journal and the search index, but only once the lake has
them (the archiver's cursor is past them and no dead letter of the archiver
comes before them) and the recorder has indexed them,
and never the newest journal row (its seq is where the next append counts
from). Rehydrated events stay until their `kept_until` time.

Each chunk of events goes in one transaction over the store and the attached
journal, so group commits and the recorder wait at most one chunk. (In WAL
mode a crash during that commit can keep a journal row whose index rows are
gone: it is no longer found by a search of the store, and the lake has it.)
The text index for `q` is contentless and keeps the words of removed events;
they are never returned, since every search joins the event index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from auditlake.config import RetentionSettings
from auditlake.core.event import Event
from auditlake.sqlite_db import DbConnection, connect, fetch_all, query, scalar, write_transaction
from auditlake.store.sqlite_recorder import position
from auditlake.vendors import PROJECTIONS

CHUNK = 1000
log = logging.getLogger(__name__)
DAY_US = 86_400 * 1_000_000
_decode = msgspec.json.Decoder(Event).decode


class SqliteRetention:
    """Removes expired events from the embedded store."""

    def __init__(
        self,
        store_path: Path,
        journal_path: Path,
        policy: RetentionSettings,
        archived: Callable[[], int],
        *,
        now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self._store_path, self._journal_path = store_path, journal_path
        self._policy = policy
        self._archived = archived
        self._now_us = now_us

    def run_once(self) -> dict[str, int]:
        """One pass over every tenant; how many events each lost."""
        conn = connect(self._store_path)
        try:
            conn.execute("ATTACH DATABASE ? AS journal", (str(self._journal_path),))
            bound = self._bound(conn)
            removed: dict[str, int] = {}
            now = self._now_us()
            for (tenant,) in fetch_all(conn, query("store", "tenants")):
                days = self._policy.days_for(str(tenant))
                if days:
                    count = _remove(conn, str(tenant), now - days * DAY_US, bound, now)
                    if count:
                        removed[str(tenant)] = count
            return removed
        finally:
            conn.close()

    def _bound(self, conn: DbConnection) -> int:
        """The highest seq that may go: archived, indexed, and not the newest."""
        newest = int(scalar(conn, "SELECT coalesce(max(seq), 0) FROM journal.events"))
        return min(self._archived(), position(conn), newest - 1)


def _remove(conn: DbConnection, tenant: str, cutoff_us: int, bound: int, now_us: int) -> int:
    removed = 0
    while True:
        with write_transaction(conn):
            rows = fetch_all(
                conn, query("store", "expired"), (tenant, cutoff_us, bound, now_us, CHUNK)
            )
            for seq, body in rows:
                _delete(conn, int(seq), _decode(bytes(body)))
        removed += len(rows)
        if len(rows) < CHUNK:
            return removed


def _delete(conn: DbConnection, seq: int, event: Event) -> None:
    for target in event.targets:
        conn.execute(query("store", "delete_target"), (event.tenant, target.id, seq))
    for name in ("delete_index", "delete_journal", "delete_kept"):
        conn.execute(query("store", name), (seq,))
    for projection in PROJECTIONS:
        if event.action == projection.action:
            conn.execute(projection.delete_sql(), (seq,))


class SqliteKeeper:
    """`Keeper` over the journal's `kept_until` table, which retention reads."""

    def __init__(self, journal_path: Path) -> None:
        self._conn = connect(journal_path)

    def keep(self, until_us: int, keys: list[tuple[str, str]]) -> None:
        """Keep the events of `keys` until `until_us` (a later time stays)."""
        with self._conn:
            self._conn.executemany(
                query("journal", "keep_until"), [(until_us, tenant, id_) for tenant, id_ in keys]
            )

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

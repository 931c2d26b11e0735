"""The read side of the SQLite journal: subscriptions that read the `events`
table after a position the same database keeps per consumer (`subscriptions`).

SQLite tells no other process when the writer commits, so a waiting `fetch`
looks again every `poll_seconds`; a writer in the same process (or a parent
relaying its news over a pipe) cuts the wait short with `wake()`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditlake.journal.base import Record, take_bytes
from auditlake.sqlite_db import DbConnection, connect, fetch_all, open_database, query, scalar

POLL_SECONDS = 0.05


class SqliteJournalReader:
    """`JournalReader` over the journal database at `path`."""

    def __init__(
        self,
        path: Path,
        *,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._poll = poll_seconds
        self._clock = clock  # seconds since the epoch, for the age in lag()
        self._lock = threading.Lock()  # guards the connection of head() and record()
        self._conn: DbConnection | None = None

    def subscribe(self, consumer: str) -> SqliteSubscription:
        """A subscription resuming after `consumer`'s committed position."""
        return SqliteSubscription(self._path, consumer, self._poll, self._clock)

    def head(self) -> int:
        """The newest seq (0 for an empty journal)."""
        with self._lock:
            return int(scalar(self._read_connection(), query("journal", "last_seq")))

    def record(self, position: int) -> Record | None:
        """The record at seq `position`, or None."""
        with self._lock:
            rows = fetch_all(
                self._read_connection(), query("journal", "records_by_seq"), (position,)
            )
        return _records(rows)[0] if rows else None

    def close(self) -> None:
        """Close the reader's own connection (subscriptions close their own)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read_connection(self) -> DbConnection:
        # A plain connection: reads never take the writer's lock (migrations
        # run where a subscription opens the journal).
        if self._conn is None:
            self._conn = connect(self._path)
        return self._conn


class SqliteSubscription:
    """`Subscription` of one consumer; one connection, used by one thread at
    a time (`wake()` excepted)."""

    def __init__(
        self, path: Path, consumer: str, poll_seconds: float, clock: Callable[[], float]
    ) -> None:
        self.consumer = consumer
        self._conn: DbConnection = open_database(path, "journal")
        self._poll = poll_seconds
        self._clock = clock
        self._news = threading.Event()
        self._read_to = self.committed()

    def fetch(
        self, max_events: int, max_wait: float = 0.0, max_bytes: int | None = None
    ) -> list[Record]:
        """Up to `max_events` records (and about `max_bytes`) after the last
        one fetched, waiting up to `max_wait` seconds for the first."""
        deadline = time.monotonic() + max_wait
        self._news.clear()
        woken = False
        while True:
            records = self._read(max_events, max_bytes)
            if records:
                self._read_to = records[-1].position
                return records
            left = deadline - time.monotonic()
            if woken or left <= 0:
                return []
            woken = self._news.wait(min(left, self._poll))  # woken: one more look

    def _read(self, max_events: int, max_bytes: int | None) -> list[Record]:
        """Rows are read one by one and the statement closed once the bytes
        are reached: the rest is never loaded, and no read stays open."""
        cursor = self._conn.execute(query("journal", "records_after"), (self._read_to, max_events))
        try:
            return take_bytes(itertools.starmap(Record, cursor), max_bytes)
        finally:
            cursor.close()

    def commit(self, position: int) -> None:
        """Store `position` as committed (durable on return); ValueError if
        it is below the committed one."""
        committed = self.committed()
        if position < committed:
            raise ValueError(
                f"{self.consumer}: commit {position} is behind the committed {committed}"
            )
        now = datetime.now(UTC).isoformat()
        self._conn.execute(query("journal", "commit_subscription"), (self.consumer, position, now))

    def committed(self) -> int:
        """The committed position (0 for none), as stored: another process
        (the consumer, when this is its parent's view) may move it."""
        stored = scalar(self._conn, query("journal", "subscription_position"), (self.consumer,))
        return 0 if stored is None else int(stored)

    def seek(self, position: int) -> None:
        """Read after `position` from the next fetch on."""
        self._read_to = position

    def lag(self, after: int | None = None) -> tuple[int, float]:
        """Records after the committed position or `after` (from the head, not
        counted one by one), and seconds since the oldest was received."""
        if after is None:
            after = self.committed()
        first = fetch_all(self._conn, query("journal", "first_record_after"), (after,))
        if not first:
            return 0, 0.0
        seq, received_us = first[0]
        head = int(scalar(self._conn, query("journal", "last_seq")))
        return head - int(seq) + 1, max(0.0, self._clock() - int(received_us) / 1e6)

    def wake(self) -> None:
        """End a waiting fetch early (from any thread)."""
        self._news.set()

    def close(self) -> None:
        """Close the connection; the committed position stays."""
        self._conn.close()


def _records(rows: list[tuple[Any, ...]]) -> list[Record]:
    """Records of `records_by_seq` rows (the columns of `Record`, in order)."""
    return list(itertools.starmap(Record, rows))

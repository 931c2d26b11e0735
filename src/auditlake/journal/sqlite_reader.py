"""The read side of the SQLite journal: subscriptions that read the `events`
table after a position the same database keeps per consumer (`subscriptions`).

SQLite tells no other process when the writer commits, so a waiting `fetch`
looks again every `poll_seconds`; a writer in the same process (or a parent
relaying its news over a pipe) cuts the wait short with `wake()`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from auditlake.journal.base import Record
from auditlake.sqlite_db import DbConnection, fetch_all, open_database, query, scalar

POLL_SECONDS = 0.05


class SqliteJournalReader:
    """`JournalReader` over the journal database at `path`."""

    def __init__(self, path: Path, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._path = path
        self._poll = poll_seconds

    def subscribe(self, consumer: str) -> SqliteSubscription:
        """A subscription resuming after `consumer`'s committed position."""
        return SqliteSubscription(self._path, consumer, self._poll)

    def head(self) -> int:
        """The newest seq (0 for an empty journal)."""
        conn = open_database(self._path, "journal")
        try:
            return int(scalar(conn, query("journal", "last_seq")))
        finally:
            conn.close()


class SqliteSubscription:
    """`Subscription` of one consumer; one connection, used by one thread at
    a time (`wake()` excepted)."""

    def __init__(self, path: Path, consumer: str, poll_seconds: float) -> None:
        self.consumer = consumer
        self._conn: DbConnection = open_database(path, "journal")
        self._poll = poll_seconds
        self._news = threading.Event()
        self._committed = self._stored_position()
        self._read_to = self._committed

    def fetch(self, max_events: int, max_wait: float = 0.0) -> list[Record]:
        """Up to `max_events` records after the last one fetched, waiting up
        to `max_wait` seconds for the first."""
        deadline = time.monotonic() + max_wait
        self._news.clear()
        woken = False
        while True:
            rows = fetch_all(
                self._conn, query("journal", "records_after"), (self._read_to, max_events)
            )
            if rows:
                records = [Record(int(s), int(r), bytes(b)) for s, r, b in rows]
                self._read_to = records[-1].position
                return records
            left = deadline - time.monotonic()
            if woken or left <= 0:
                return []
            woken = self._news.wait(min(left, self._poll))  # woken: one more look

    def commit(self, position: int) -> None:
        """Store `position` as committed (durable on return); ValueError if
        it is below the committed one."""
        if position < self._committed:
            raise ValueError(
                f"{self.consumer}: commit {position} is behind the committed {self._committed}"
            )
        now = datetime.now(UTC).isoformat()
        self._conn.execute(query("journal", "commit_subscription"), (self.consumer, position, now))
        self._committed = position

    def committed(self) -> int:
        """The committed position (0 for none)."""
        return self._committed

    def seek(self, position: int) -> None:
        """Read after `position` from the next fetch on."""
        self._read_to = position

    def lag(self) -> tuple[int, float]:
        """Records after the committed position (from the head, not counted
        one by one), and seconds since the oldest of them was received."""
        first = fetch_all(self._conn, query("journal", "first_record_after"), (self._committed,))
        if not first:
            return 0, 0.0
        seq, received_us = first[0]
        head = int(scalar(self._conn, query("journal", "last_seq")))
        return head - int(seq) + 1, max(0.0, time.time() - int(received_us) / 1e6)

    def wake(self) -> None:
        """End a waiting fetch early (from any thread)."""
        self._news.set()

    def close(self) -> None:
        """Close the connection; the committed position stays."""
        self._conn.close()

    def _stored_position(self) -> int:
        stored = scalar(self._conn, query("journal", "subscription_position"), (self.consumer,))
        return 0 if stored is None else int(stored)

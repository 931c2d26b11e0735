"""Consumers' durable state in the embedded `consumers` database: one cursor
(the last journal seq whose output is durable) per consumer, and the events
each could not process, with the reason."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from auditlake.sqlite_db import fetch_all, open_database, query, scalar


class DeadLetter(msgspec.Struct, frozen=True):
    """A journal event a consumer gave up on."""

    seq: int
    reason: str
    recorded_at: str


class ConsumerState:
    """Cursors and dead letters; safe to share between consumer threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path, "consumers")
        self._lock = threading.Lock()

    def cursor(self, consumer: str) -> int:
        """The last journal seq `consumer` has made durable (0: none)."""
        with self._lock:
            seq = scalar(self._conn, query("consumers", "get_cursor"), (consumer,))
        return 0 if seq is None else int(seq)

    def output_through(self, consumer: str) -> int:
        """The last journal seq up to which every event has `consumer`'s output:
        its cursor, or just before its first dead letter (which has none)."""
        with self._lock:
            first = scalar(self._conn, query("consumers", "first_dead_letter"), (consumer,))
        cursor = self.cursor(consumer)
        return cursor if first is None else min(cursor, int(first) - 1)

    def advance(self, consumer: str, seq: int) -> None:
        """Move the cursor to `seq`; never backwards (durable on return)."""
        with self._lock:
            self._conn.execute(query("consumers", "set_cursor"), (consumer, seq, _now()))

    def dead_letter(self, consumer: str, seq: int, reason: str) -> None:
        """Record that `consumer` could not process journal event `seq`."""
        with self._lock:
            self._conn.execute(
                query("consumers", "insert_dead_letter"), (consumer, seq, reason, _now())
            )

    def dead_letters(self, consumer: str) -> list[DeadLetter]:
        """The dead letters of `consumer`, by seq."""
        with self._lock:
            rows = fetch_all(self._conn, query("consumers", "dead_letters"), (consumer,))
        return [DeadLetter(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def forget(self, consumer: str, seq: int) -> None:
        """Remove a dead letter (it was replayed)."""
        with self._lock:
            self._conn.execute(query("consumers", "delete_dead_letter"), (consumer, seq))

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()

"""Consumers' durable state in the embedded `consumers` database: the events
each could not process, with the reason. (Positions live in the journal's
subscriptions; the `cursors` of earlier releases are read once, to resume.)"""

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

    def legacy_cursor(self, consumer: str) -> int:
        """The last journal seq `consumer` made durable before positions
        moved to the journal's subscriptions (0: none)."""
        with self._lock:
            seq = scalar(self._conn, query("consumers", "get_cursor"), (consumer,))
        return 0 if seq is None else int(seq)

    def output_through(self, consumer: str, committed: int) -> int:
        """The last journal seq up to which every event has `consumer`'s
        output: its `committed` position, or just before its first dead
        letter (which has none)."""
        with self._lock:
            first = scalar(self._conn, query("consumers", "first_dead_letter"), (consumer,))
        return committed if first is None else min(committed, int(first) - 1)

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

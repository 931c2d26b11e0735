"""Pollers' durable state in the embedded `pollers` database: one checkpoint
per source (it only moves forward) and the dead-lettered vendor items."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from auditlake.core.event import from_micros, to_micros
from auditlake.sqlite_db import fetch_all, open_database, query, scalar


class DeadLetter(msgspec.Struct, frozen=True):
    """A vendor item that could not be kept, and why."""

    id: int
    reason: str
    item: Any
    recorded_at: str


class PollerState:
    """Checkpoints and dead letters; safe to share between poller threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path, "pollers")
        self._lock = threading.Lock()

    def checkpoint(self, source: str) -> datetime | None:
        """Where `source`'s next poll starts (before its safety lag), if known."""
        with self._lock:
            micros = scalar(self._conn, query("pollers", "get_checkpoint"), (source,))
        return None if micros is None else from_micros(int(micros))

    def advance(self, source: str, checkpoint: datetime) -> None:
        """Move the checkpoint to `checkpoint`; never backwards (durable on return)."""
        with self._lock:
            self._conn.execute(
                query("pollers", "set_checkpoint"),
                (source, to_micros(checkpoint), _now()),
            )

    def dead_letter(self, source: str, reason: str, item: Any) -> None:
        """Keep an item that could not be mapped, with the reason (once per
        source, however many polls see it again)."""
        encoded = msgspec.json.encode(item)
        key = hashlib.sha256(encoded).hexdigest()
        with self._lock:
            self._conn.execute(
                query("pollers", "insert_dead_letter"), (source, reason, encoded, _now(), key)
            )

    def dead_letters(self, source: str) -> list[DeadLetter]:
        """The dead letters of `source`, oldest first."""
        with self._lock:
            rows = fetch_all(self._conn, query("pollers", "dead_letters"), (source,))
        return [DeadLetter(r[0], r[1], msgspec.json.decode(r[2]), r[3]) for r in rows]

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()

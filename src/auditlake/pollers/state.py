"""Pollers' durable state in the embedded `pollers` database: one checkpoint
per source (it only moves forward) and the dead-lettered vendor items (the
`dead_letters` shape every owner shares, keyed by a digest of the item)."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from auditlake.core.event import from_micros, to_micros
from auditlake.dead_letters import DeadLetter, now_text
from auditlake.sqlite_db import open_database, query, scalar
from auditlake.sqlite_dead_letters import SqliteDeadLetters


class PollerState:
    """Checkpoints and dead letters; safe to share between poller threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path, "pollers")
        self._lock = threading.Lock()
        self._letters = SqliteDeadLetters(self._conn, self._lock)

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
                (source, to_micros(checkpoint), now_text()),
            )

    def dead_letter(self, source: str, reason: str, item: Any) -> None:
        """Keep an item that could not be mapped, with the reason (once per
        source, however many polls see it again)."""
        encoded = msgspec.json.encode(item)
        key = hashlib.sha256(encoded).hexdigest()
        self._letters.add(source, key, reason, encoded, None)

    def dead_letters(self, source: str) -> list[DeadLetter]:
        """The dead letters of `source`, oldest first."""
        return self._letters.letters(source)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

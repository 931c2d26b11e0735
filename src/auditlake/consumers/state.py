"""Consumers' durable state in the embedded `consumers` database: the events
each gave up on (`dead_letters`, the shape every owner shares). Positions
live in the journal's subscriptions; the `cursors` of earlier releases are
read once, to resume."""

from __future__ import annotations

import threading
from pathlib import Path

from auditlake.sqlite_db import open_database, query, scalar
from auditlake.sqlite_dead_letters import SqliteDeadLetters


class ConsumerState:
    """The consumers database; safe to share between consumer threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path, "consumers")
        self._lock = threading.Lock()
        self.dead_letters = SqliteDeadLetters(self._conn, self._lock)

    def legacy_cursor(self, consumer: str) -> int:
        """The last journal seq `consumer` made durable before positions
        moved to the journal's subscriptions (0: none)."""
        with self._lock:
            seq = scalar(self._conn, query("consumers", "get_cursor"), (consumer,))
        return 0 if seq is None else int(seq)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

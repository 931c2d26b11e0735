"""The recorder of the embedded store: it follows the journal and writes the
search index (`event_index`, `event_targets`, `events_text`).

Lifecycle contract: `position()` is the last journal `seq` indexed; `step()`
indexes the next events after it in ONE transaction that also moves the
position, so after a crash indexing resumes exactly where it stopped. It runs
on the journal's writer connection (SQLite has one writer per file), called by
the writer thread between group commits; large steps amortize the cost of
index maintenance over many events.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import msgspec

from auditlake.core.event import Event, search_text
from auditlake.store.sqlite_db import query

CONSUMER = "recorder"
_decode = msgspec.json.Decoder(Event).decode


class SqliteRecorder:
    """Indexes journal events for search, batch by batch."""

    def __init__(
        self,
        *,
        batch_events: int = 20_000,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        self.batch_events = batch_events
        self._on_step = on_step

    def position(self, conn: sqlite3.Connection) -> int:
        """The last journal seq already indexed (0 for none)."""
        row = conn.execute(query("get_offset"), (CONSUMER,)).fetchone()
        return 0 if row is None else int(row[0])

    def step(self, conn: sqlite3.Connection, after: int) -> int:
        """Index up to `batch_events` events after `after`; return the new position."""
        started = time.perf_counter()
        rows = conn.execute(query("events_after"), (after, self.batch_events)).fetchall()
        if not rows:
            return after
        index, targets, texts = [], [], []
        for seq, occurred_us, body in rows:
            event = _decode(body)
            actor = event.actor
            index.append((
                seq, event.tenant, event.action, occurred_us, actor.id if actor else None,
                actor.type if actor else None, event.outcome, event.source,
            ))  # fmt: skip
            targets += [(seq, event.tenant, t.id, t.type) for t in event.targets]
            texts.append((seq, search_text(event)))
        position = int(rows[-1][0])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(query("insert_index"), index)
            conn.executemany(query("insert_target"), targets)
            conn.executemany(query("insert_text"), texts)
            conn.execute(query("set_offset"), (CONSUMER, position))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if self._on_step is not None:
            self._on_step(len(rows), time.perf_counter() - started)
        return position

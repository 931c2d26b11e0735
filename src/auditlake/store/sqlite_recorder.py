"""The recorder of the embedded store: a consumer thread that follows the
journal and writes the search index (`event_index`, `event_targets`,
`events_text`) into the store database.

Lifecycle contract:
- `start()` opens both databases and resumes after the last indexed `seq`
  (kept in the store, in the same transaction as the index rows it covers,
  so a crash never skips or repeats an event).
- Each step indexes every event the journal has after that position, up to
  `batch_events`, in ONE transaction. Under load, the backlog that builds up
  while a step runs becomes the next, larger step: index maintenance is
  amortized without delaying any acknowledgement (the journal does not wait
  for the recorder).
- `notify(seq)` tells it the journal now holds events up to `seq`; it also
  looks at the journal itself every `poll_seconds`.
- `sync()` resolves once everything the journal held at that call is indexed.
- `close()` indexes what the journal holds, then stops.

The store is derived data, so it commits with synchronous=NORMAL: a power
loss may undo its last steps, which are then redone from the journal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import msgspec

from auditlake.core.event import Event, search_text
from auditlake.sqlite_db import connect, open_database, query

log = logging.getLogger(__name__)
CONSUMER = "recorder"
_decode = msgspec.json.Decoder(Event).decode


class SqliteRecorder:
    """Indexes journal events for search, batch by batch, on its own thread."""

    def __init__(
        self,
        journal_path: Path,
        store_path: Path,
        *,
        batch_events: int = 20_000,
        poll_seconds: float = 1.0,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        self._journal_path = journal_path
        self._store_path = store_path
        self.batch_events = batch_events
        self._poll = poll_seconds
        self._on_step = on_step
        self._wakeup = threading.Condition()
        self._head = 0  # last seq the journal is known to hold
        self._position = 0  # last seq indexed
        self._waiters: list[tuple[int, Future[None]]] = []
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the databases, resume from the stored position, start the thread."""
        self._store = open_database(self._store_path, "store", synchronous="NORMAL")
        self._journal = connect(self._journal_path)
        self._position = position(self._store)
        self._head = self._journal_head()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def notify(self, head: int) -> None:
        """The journal holds events up to `head` (called after each group commit)."""
        with self._wakeup:
            if head > self._head:
                self._head = head
                self._wakeup.notify()

    def sync(self) -> Future[None]:
        """Resolves once every event the journal holds now is indexed."""
        future: Future[None] = Future()
        with self._wakeup:
            if self._position >= self._head:
                future.set_result(None)
            else:
                self._waiters.append((self._head, future))
        return future

    def lag(self) -> int:
        """Events in the journal not yet searchable."""
        return max(0, self._head - self._position)

    def healthy(self) -> bool:
        """False once the thread has stopped."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Index what the journal holds, then stop and close the databases."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join()
            self._store.close()
            self._journal.close()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while self._position >= self._head and not self._closing:
                    if not self._wakeup.wait(self._poll):
                        self._head = max(self._head, self._journal_head())
                if self._closing and self._position >= self._head:
                    return
            try:
                self._advance(step(self._journal, self._store, self._position, self.batch_events))
            except Exception:  # the journal is intact: log, pause, and try again
                log.exception("indexing after seq %d failed", self._position)
                if self._closing:
                    return
                time.sleep(1.0)

    def _advance(self, done: tuple[int, int, float]) -> None:
        indexed, new_position, seconds = done
        if self._on_step is not None and indexed:
            self._on_step(indexed, seconds)
        with self._wakeup:
            self._position = new_position
            self._head = max(self._head, new_position)
            ready = [f for target, f in self._waiters if target <= new_position]
            self._waiters = [(t, f) for t, f in self._waiters if t > new_position]
        for future in ready:
            future.set_result(None)

    def _journal_head(self) -> int:
        return int(self._journal.execute(query("journal", "last_seq")).fetchone()[0])


def position(store: sqlite3.Connection) -> int:
    """The last journal seq the store has indexed (0 for none)."""
    row = store.execute(query("store", "get_offset"), (CONSUMER,)).fetchone()
    return 0 if row is None else int(row[0])


def step(
    journal: sqlite3.Connection, store: sqlite3.Connection, after: int, limit: int
) -> tuple[int, int, float]:
    """Index up to `limit` journal events after `after` in one transaction.

    The stored position is checked inside the transaction, so two recorders
    (say, one of a process that was just killed) never index an event twice.
    Returns (events indexed, new position, seconds taken).
    """
    started = time.perf_counter()
    rows = journal.execute(query("journal", "events_after"), (after, limit)).fetchall()
    if not rows:
        return 0, after, 0.0
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
    new_position = int(rows[-1][0])
    store.execute("BEGIN IMMEDIATE")
    try:
        moved = position(store)
        if moved != after:  # another recorder (a previous process) got there first
            store.execute("ROLLBACK")
            return 0, moved, 0.0
        store.executemany(query("store", "insert_index"), index)
        store.executemany(query("store", "insert_target"), targets)
        store.executemany(query("store", "insert_text"), texts)
        store.execute(query("store", "set_offset"), (CONSUMER, new_position))
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    return len(rows), new_position, time.perf_counter() - started

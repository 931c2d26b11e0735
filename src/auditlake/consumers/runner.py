"""A journal consumer: reads the journal after its durable cursor, in batches,
hands each batch to its sink, and moves the cursor only once the sink's
output is durable.

Lifecycle contract of a `Sink`:

- `write(events)` makes its output for every event durable before it
  returns, idempotently by `(tenant, id)`: the same events written twice
  (after a crash between the output and the cursor) leave the same output.
- It raises a transient `AuditlakeError` when retrying may help, or a
  `ConfigError` when its setup is wrong (a missing bucket, denied access):
  the runner retries the batch with capped exponential backoff, so the
  consumer waits, its lag growing in /metrics, until the setup is fixed.
  Any other `AuditlakeError` is permanent and blamed on events: the batch is
  halved until the events that cause it are alone; those go to the
  dead-letter table with the reason while the others are written.

A batch is flushed when `batch_events` are waiting or the oldest waiting
event was received `batch_seconds` ago; during a burst (the journal growing
by more than `batch_events` per second) only the age counts, so a burst is
archived after it, within `batch_seconds`. A flush takes everything waiting,
up to `catch_up_events` (or `batch_events`, if larger): a consumer that is
behind writes fewer, larger batches, which matters to a sink whose cost per
batch grows with what it already holds (the archiver rewrites each hour's
file it touches). At most one batch is in flight: the journal is the buffer,
so backpressure is simply the cursor's lag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec

from auditlake.consumers.state import ConsumerState
from auditlake.core.event import Event
from auditlake.errors import AuditlakeError, ConfigError
from auditlake.sqlite_db import DbConnection, connect, fetch_all, query, scalar

log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder(Event).decode
Record = tuple[int, int, bytes]  # seq, received_us, body
# The most events one flush takes when more are waiting (about 150 MB decoded).
CATCH_UP_EVENTS = 50_000


class Sink(Protocol):
    """Where a consumer's output goes."""

    def write(self, events: list[Event]) -> None:
        """Make the output of `events` durable (idempotent by tenant and id)."""
        ...


class ConsumerRunner:
    """Follows the journal for one sink, in a thread or step by step."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        journal_path: Path,
        state: ConsumerState,
        *,
        batch_events: int = 10_000,
        batch_seconds: float = 60.0,
        catch_up_events: int = CATCH_UP_EVENTS,
        poll_seconds: float = 0.5,
        max_backoff: float = 30.0,
        now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.name = name
        self._sink = sink
        self._journal_path = journal_path
        self._state = state
        self._batch_events = batch_events
        self._batch_us = int(batch_seconds * 1_000_000)
        self._flush_limit = max(batch_events, catch_up_events)
        self._poll = poll_seconds
        self._max_backoff = max_backoff
        self._now_us = now_us
        self._journal: DbConnection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled_at, self._sampled_head, self._busy = 0.0, 0, False

    def step(self, *, flush: bool = False) -> int:
        """Write one batch if one is due (or any waiting events, with `flush`);
        returns how many events it handled."""
        cursor = self._state.cursor(self.name)
        waiting, age_us = self._waiting(cursor)
        if not waiting:
            return 0
        full, old = waiting >= self._batch_events, age_us >= self._batch_us
        if not (flush or old or (full and not self._ingest_busy())):
            return 0
        records = self._records(cursor, self._flush_limit)
        self._write(records)
        self._state.advance(self.name, records[-1][0])
        return len(records)

    def _ingest_busy(self) -> bool:
        """Whether the journal grew by more than a batch per second over the
        last second or so: a burst, during which full batches wait for their
        age so that archiving takes no CPU from ingest and indexing."""
        now = self._now_us() / 1e6
        if now - self._sampled_at >= 1.0:
            head = self._head()
            if self._sampled_at:
                rate = (head - self._sampled_head) / (now - self._sampled_at)
                self._busy = rate > self._batch_events
            self._sampled_at, self._sampled_head = now, head
        return self._busy

    def lag(self) -> tuple[int, float]:
        """Events after the cursor, and seconds since the oldest of them was received."""
        waiting, age_us = self._waiting(self._state.cursor(self.name))
        return waiting, age_us / 1e6

    def _waiting(self, cursor: int) -> tuple[int, int]:
        """Events after `cursor` (from the journal's head, without reading
        them), and microseconds since the oldest of them was received."""
        oldest = self._records(cursor, 1)
        if not oldest:
            return 0, 0
        return self._head() - oldest[0][0] + 1, self._now_us() - oldest[0][1]

    def replay_dead_letters(self) -> tuple[int, int]:
        """Hand the dead-lettered events to the sink again; those it takes are
        forgotten. Returns (replayed, still failing)."""
        replayed = failing = 0
        for letter in self._state.dead_letters(self.name):
            rows = fetch_all(self._db(), query("journal", "records_by_seq"), (letter.seq,))
            if not rows:  # not in the journal (any more): nothing to replay
                self._state.forget(self.name, letter.seq)
                continue
            try:
                self._sink.write([_decode(bytes(rows[0][2]))])
            except AuditlakeError as exc:
                failing += 1
                self._state.dead_letter(self.name, letter.seq, exc.message)
                continue
            self._state.forget(self.name, letter.seq)
            replayed += 1
        return replayed, failing

    def start(self) -> None:
        """Run `step()` in a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Flush what is waiting, then stop the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _run(self) -> None:
        failures = 0
        while True:
            stopping = self._stopping.is_set()
            try:
                written = self.step(flush=stopping)
                failures = 0
            except Exception:  # the cursor stayed: the same batch is tried again
                failures += 1
                log.exception("%s: writing a batch failed (%d in a row)", self.name, failures)
                written = 0
                if stopping:
                    return
            if stopping and not written:
                return
            wait = min(self._max_backoff, 2.0 ** (failures - 1)) if failures else self._poll
            if not written or failures:
                self._stopping.wait(wait)

    def _write(self, records: list[Record]) -> None:
        """Write a batch, dead-lettering the events a permanent error is about."""
        self._write_or_split([r[0] for r in records], [_decode(r[2]) for r in records])

    def _write_or_split(self, seqs: list[int], events: list[Event]) -> None:
        """On a permanent error, write each half alone, down to single events
        that are dead-lettered: a poison event costs about log2(n) writes of
        its neighbours, not one write per event of the batch."""
        try:
            self._sink.write(events)
        except AuditlakeError as exc:
            if exc.transient or isinstance(exc, ConfigError):
                raise
            if len(events) == 1:
                self._state.dead_letter(self.name, seqs[0], exc.message)
                return
            half = len(events) // 2
            self._write_or_split(seqs[:half], events[:half])
            self._write_or_split(seqs[half:], events[half:])

    def _head(self) -> int:
        """The journal's last seq."""
        return int(scalar(self._db(), query("journal", "last_seq")))

    def _records(self, after: int, limit: int) -> list[Record]:
        rows = fetch_all(self._db(), query("journal", "records_after"), (after, limit))
        return [(int(s), int(r), bytes(b)) for s, r, b in rows]

    def _db(self) -> DbConnection:
        if self._journal is None:
            self._journal = connect(self._journal_path)
        return self._journal


class ConsumerGroup:
    """The consumers of a service and their shared state."""

    def __init__(self, runners: list[ConsumerRunner], state: ConsumerState) -> None:
        self.runners = runners
        self.state = state

    def start(self) -> None:
        """Start every consumer's thread."""
        for runner in self.runners:
            runner.start()

    def stop(self) -> None:
        """Let every consumer flush what the journal holds, then close the state."""
        for runner in self.runners:
            runner.stop()
        self.state.close()

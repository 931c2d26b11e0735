"""A journal consumer: reads its `Subscription` of the journal in batches,
hands each batch to its sink, and commits the batch's last position only
once the sink's output is durable.

Lifecycle contract of a `Sink`:

- `write(batch)` makes its output for every record of the batch durable
  before it returns, idempotently by `(tenant, id)`: the same records written
  twice (after a crash between the output and the commit) leave the same
  output. The batch carries the records' journal positions and stored bytes,
  and decodes their events once, when first asked.
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

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from auditlake.consumers.state import ConsumerState
from auditlake.core.event import Event
from auditlake.errors import AuditlakeError, ConfigError
from auditlake.journal.base import JournalReader, Record, Subscription

log = logging.getLogger(__name__)
# The most events one flush takes when more are waiting (about 150 MB decoded).
CATCH_UP_EVENTS = 50_000


class Batch:
    """Journal records for a sink, in position order; their events are
    decoded once, on the first call of `events()`."""

    def __init__(self, records: list[Record], events: list[Event] | None = None) -> None:
        self.records = records
        self._events = events

    def events(self) -> list[Event]:
        """The records' events, in the same order."""
        if self._events is None:
            self._events = [record.event() for record in self.records]
        return self._events

    def split(self) -> tuple[Batch, Batch]:
        """The first and the second half (decoded events go with them)."""
        half = len(self.records) // 2
        events = self._events
        return (
            Batch(self.records[:half], events[:half] if events is not None else None),
            Batch(self.records[half:], events[half:] if events is not None else None),
        )


class Sink(Protocol):
    """Where a consumer's output goes."""

    def write(self, batch: Batch) -> None:
        """Make the output of `batch` durable (idempotent by tenant and id)."""
        ...


class ConsumerRunner:
    """Follows the journal for one sink, in a thread or step by step."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        reader: JournalReader,
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
        self._reader = reader
        self._state = state
        self._batch_events = batch_events
        self._batch_us = int(batch_seconds * 1_000_000)
        self._flush_limit = max(batch_events, catch_up_events)
        self._poll = poll_seconds
        self._max_backoff = max_backoff
        self._now_us = now_us
        self._subscription: Subscription | None = None
        # A subscription serves one thread at a time: the parent's view is
        # asked from /metrics and from retention at once.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled_at, self._sampled_head, self._busy = 0.0, 0, False

    def step(self, *, flush: bool = False) -> int:
        """Write one batch if one is due (or any waiting events, with `flush`);
        returns how many events it handled."""
        with self._lock:
            return self._step(flush)

    def _step(self, flush: bool) -> int:
        subscription = self._subscribed()
        waiting, age = subscription.lag()
        if not waiting:
            return 0
        full, old = waiting >= self._batch_events, age * 1e6 >= self._batch_us
        if not (flush or old or (full and not self._ingest_busy())):
            return 0
        # From the commit on: a batch that failed before is read again.
        subscription.seek(subscription.committed())
        records = subscription.fetch(self._flush_limit)
        if not records:  # retention removed what waited
            return 0
        self._write_or_split(Batch(records))
        subscription.commit(records[-1].position)
        return len(records)

    def _ingest_busy(self) -> bool:
        """Whether the journal grew by more than a batch per second over the
        last second or so: a burst, during which full batches wait for their
        age so that archiving takes no CPU from ingest and indexing."""
        now = self._now_us() / 1e6
        if now - self._sampled_at >= 1.0:
            head = self._reader.head()
            if self._sampled_at:
                rate = (head - self._sampled_head) / (now - self._sampled_at)
                self._busy = rate > self._batch_events
            self._sampled_at, self._sampled_head = now, head
        return self._busy

    def lag(self) -> tuple[int, float]:
        """Events after the committed position, and seconds since the oldest
        of them was received."""
        with self._lock:
            return self._subscribed().lag()

    def committed(self) -> int:
        """The last journal position whose output is durable (0: none)."""
        with self._lock:
            return self._subscribed().committed()

    def output_through(self) -> int:
        """The last journal position up to which every event has this
        consumer's output: the committed one, or just before the first dead
        letter (which has none)."""
        return self._state.output_through(self.name, self.committed())

    def replay_dead_letters(self) -> tuple[int, int]:
        """Hand the dead-lettered events to the sink again; those it takes are
        forgotten. Returns (replayed, still failing)."""
        replayed = failing = 0
        for letter in self._state.dead_letters(self.name):
            record = self._reader.record(letter.seq)
            if record is None:  # not in the journal (any more): nothing to replay
                self._state.forget(self.name, letter.seq)
                continue
            try:
                self._sink.write(Batch([record]))
            except AuditlakeError as exc:
                failing += 1
                self._state.dead_letter(self.name, letter.seq, exc.message)
                continue
            self._state.forget(self.name, letter.seq)
            replayed += 1
        return replayed, failing

    def start(self) -> None:
        """Run `step()` in a daemon thread until `close()`."""
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.name}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Flush what is waiting, then stop the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            if self._subscription is not None:
                self._subscription.close()
                self._subscription = None

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

    def _write_or_split(self, batch: Batch) -> None:
        """Write a batch; on a permanent error, write each half alone, down to
        single events that are dead-lettered: a poison event costs about
        log2(n) writes of its neighbours, not one write per event."""
        try:
            self._sink.write(batch)
        except AuditlakeError as exc:
            if exc.transient or isinstance(exc, ConfigError):
                raise
            if len(batch.records) == 1:
                self._state.dead_letter(self.name, batch.records[0].position, exc.message)
                return
            for half in batch.split():
                self._write_or_split(half)

    def _subscribed(self) -> Subscription:
        """This consumer's subscription (under `_lock`), opened on first use."""
        if self._subscription is None:
            self._subscription = self._reader.subscribe(self.name)
            self._adopt_legacy_cursor(self._subscription)
        return self._subscription

    def _adopt_legacy_cursor(self, subscription: Subscription) -> None:
        """A consumer that kept its cursor in the consumers database before
        subscriptions existed resumes from it, once, if the journal holds
        that far (a journal restored or made anew would otherwise have its
        first events skipped)."""
        legacy = self._state.legacy_cursor(self.name)
        if legacy <= subscription.committed():
            return
        if legacy > self._reader.head():
            log.warning("%s: its old cursor %d is past the journal's head; not resuming from it",
                        self.name, legacy)  # fmt: skip
            return
        # Another process may have committed further meanwhile: nothing to adopt.
        with contextlib.suppress(ValueError):
            subscription.commit(legacy)


class ConsumerGroup:
    """The consumers of a service and their shared state."""

    def __init__(self, runners: list[ConsumerRunner], state: ConsumerState) -> None:
        self.runners = runners
        self.state = state

    def start(self) -> None:
        """Start every consumer's thread."""
        for runner in self.runners:
            runner.start()

    def close(self) -> None:
        """Let every consumer flush what the journal holds, then close the state."""
        for runner in self.runners:
            runner.close()
        self.state.close()

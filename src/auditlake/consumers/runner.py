"""A journal consumer: reads its `Subscription` of the journal in batches,
hands each batch to its sink (see `consumers.sink` for the sink's contract),
and commits the batch's last position only once the sink's output is durable
(a `PositionedSink` commits its own, with its output).

A batch is flushed when `batch_events` are waiting or the oldest waiting
event was received `batch_seconds` ago (with 0, whenever one waits); during a
burst (the journal growing by more than `batch_events` per second) only the
age counts, so a burst is archived after it, within `batch_seconds`. A flush
takes what is waiting up to `catch_up_events` (or `batch_events`, if larger)
and `batch_bytes` of stored JSON: a consumer that is behind writes fewer,
larger batches, which matters to a sink whose cost per batch grows with what
it already holds (the archiver rewrites each hour's file it touches, the
recorder's index pages are shared by neighbouring events), while its memory
stays bounded by configuration, not by the backlog. At most one batch is in
flight: the journal is the buffer, so backpressure is simply the lag.

A runner's thread waits `poll_seconds` between looks at the journal unless
`wake()` (a writer's "committed" news) cuts the wait short, and looks again
at once only after a batch that a limit cut short, and otherwise no sooner
than `min_step_seconds` after the last batch began (the recorder: 10 ms, so
that a stream of small commits makes fewer, larger batches, while a long
batch is followed at once); when a look finds nothing to do, `on_idle` may
do background work (it returns whether more is pending).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

import msgspec

from auditlake.consumers.filter import EventFilter
from auditlake.consumers.sink import Batch, PositionedSink, Sink
from auditlake.core.event import Event, to_micros
from auditlake.dead_letters import DeadLetter, DeadLetters
from auditlake.errors import AuditlakeError, ConfigError
from auditlake.journal.base import JournalReader, Record, Subscription, cut_short

log = logging.getLogger(__name__)
# The most events one flush takes when more are waiting.
CATCH_UP_EVENTS = 50_000
# The most stored JSON one flush takes, whatever the events' sizes: 50,000
# events of a typical 700 bytes fit. Sinks decode a batch piece by piece
# (the archiver a partition at a time, the recorder an event at a time), so
# a consumer catching up 200,000 events peaks under 200 MiB RSS
# (bench/backlog_memory.py, docs/benchmarks.md).
BATCH_BYTES = 40 * 1024 * 1024
# Told after each batch: (journal records it covered, seconds taken, the new
# position).
BatchObserver = Callable[[int, float, int], None]


class ConsumerRunner:
    """Follows the journal for one sink, in a thread or step by step."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        reader: JournalReader,
        dead_letters: DeadLetters,
        *,
        resume_from: int = 0,
        batch_events: int = 10_000,
        batch_seconds: float = 60.0,
        catch_up_events: int = CATCH_UP_EVENTS,
        batch_bytes: int = BATCH_BYTES,
        poll_seconds: float = 0.5,
        min_step_seconds: float = 0.0,
        max_backoff: float = 30.0,
        event_filter: EventFilter | None = None,
        on_batch: BatchObserver | None = None,
        on_idle: Callable[[], bool] | None = None,
        now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.name = name
        self._sink = sink
        self._positioned = sink if isinstance(sink, PositionedSink) else None
        self._reader = reader
        self._dead_letters = dead_letters
        self._resume_from = resume_from
        self._batch_events = batch_events
        self._batch_us = int(batch_seconds * 1_000_000)
        self._flush_limit = max(batch_events, catch_up_events)
        self._batch_bytes = batch_bytes
        self._poll = poll_seconds
        self._min_step = min_step_seconds
        self._max_backoff = max_backoff
        self._filter = event_filter
        self._on_batch = on_batch
        self._on_idle = on_idle
        self._now_us = now_us
        self._subscription: Subscription | None = None
        # A subscription serves one thread at a time: the parent's view is
        # asked from /metrics and from retention at once.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._news = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled_at, self._sampled_head, self._busy = 0.0, 0, False
        self._cut = False  # whether the last batch stopped at a limit (more may wait)
        self._step_began = 0.0  # time.monotonic() when the last batch began

    def step(self, *, flush: bool = False) -> int:
        """Write one batch if one is due (or any waiting events, with `flush`);
        returns how many journal records it covered."""
        with self._lock:
            return self._step(flush)

    def _step(self, flush: bool) -> int:
        subscription = self._subscribed()
        at = self._position(subscription)
        if not (flush or self._batch_us == 0 or self._due(subscription, at)):
            return 0
        started = time.perf_counter()
        self._step_began = time.monotonic()
        # From the commit on: a batch that failed before is read again.
        subscription.seek(at)
        records = subscription.fetch(self._flush_limit, max_bytes=self._batch_bytes)
        if not records:
            return 0
        self._cut = cut_short(records, self._flush_limit, self._batch_bytes)
        self._write_or_split(self._filtered(Batch(records)))
        if self._positioned is None:
            subscription.commit(records[-1].position)
        if self._on_batch is not None:
            # The sink's position, not the batch's end: another recorder on
            # the same store may have moved it further.
            at = self._position(subscription)
            self._on_batch(len(records), time.perf_counter() - started, at)
        return len(records)

    def _due(self, subscription: Subscription, at: int) -> bool:
        waiting, age = subscription.lag(at)
        if not waiting:
            return False
        full, old = waiting >= self._batch_events, age * 1e6 >= self._batch_us
        return old or (full and not self._ingest_busy())

    def _filtered(self, batch: Batch) -> Batch:
        if self._filter is None:
            return batch
        return self._filter.apply(batch)

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
            subscription = self._subscribed()
            return subscription.lag(self._position(subscription))

    def head(self) -> int:
        """The journal's newest position, as this consumer's reader sees it."""
        return self._reader.head()

    def committed(self) -> int:
        """The last journal position whose output is durable (0: none)."""
        with self._lock:
            return self._position(self._subscribed())

    def output_through(self) -> int:
        """The last journal position up to which every event has this
        consumer's output: the committed one, or just before the first dead
        letter (which has none)."""
        committed = self.committed()
        first = self._dead_letters.first_position(self.name)
        return committed if first is None else min(committed, first - 1)

    def replay_dead_letters(self) -> tuple[int, int]:
        """Hand the dead-lettered events to the sink again; those it takes are
        forgotten. Returns (replayed, still failing). ConfigError for a
        positioned sink, which writes in journal order only."""
        if self._positioned is not None:
            raise ConfigError(f"{self.name} writes in journal order: its dead letters stay listed")
        replayed = failing = 0
        for letter in self._dead_letters.letters(self.name):
            record = self._letter_record(letter)
            if record is None:  # neither kept nor in the journal: nothing to replay
                self._dead_letters.forget(self.name, letter.key)
                continue
            try:
                self._sink.write(Batch([record]))
            except AuditlakeError as exc:
                failing += 1
                self._dead_lettered(record, exc.message)
                continue
            self._dead_letters.forget(self.name, letter.key)
            replayed += 1
        return replayed, failing

    def _letter_record(self, letter: DeadLetter) -> Record | None:
        """The record a letter holds (from the journal while it is there)."""
        position = letter.position or 0
        record = self._reader.record(position)
        if record is not None or letter.item is None:
            return record
        body = bytes(letter.item)
        event = msgspec.json.decode(body, type=Event)
        return Record(position, 0, to_micros(event.occurred_at), event.tenant, body)

    def _dead_lettered(self, record: Record, reason: str) -> None:
        position = record.position
        log.warning("%s: set journal position %d aside in the dead letters: %s",
                    self.name, position, reason)  # fmt: skip
        self._dead_letters.add(self.name, str(position), reason, record.body, position)

    def start(self) -> None:
        """Run `step()` in a daemon thread until `close()`."""
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the journal now rather than after the poll interval (from
        any thread; for a writer's "committed" news)."""
        self._news.set()

    def close(self, timeout: float = 60.0) -> bool:
        """Flush what is waiting, then stop the thread; False if it is still
        writing after `timeout` seconds (its subscription is then left open)."""
        self._stopping.set()
        self._news.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        with self._lock:
            if self._subscription is not None:
                self._subscription.close()
                self._subscription = None
        return True

    def _run(self) -> None:
        failures = 0
        idle_pending = True
        while True:
            self._news.clear()  # before reading `stopping`: close() sets both
            stopping = self._stopping.is_set()
            try:
                written = self.step(flush=stopping)
                failures = 0
            except Exception:  # the position stayed: the same batch is tried again
                failures += 1
                log.exception("%s: writing a batch failed (%d in a row)", self.name, failures)
                written = 0
                if stopping:
                    return
            if stopping and not written:
                return
            if not written and not failures and self._on_idle is not None and idle_pending:
                idle_pending = self._idle()
                if idle_pending:
                    continue
            wait = min(self._max_backoff, 2.0 ** (failures - 1)) if failures else self._poll
            # After a batch that took all there was, the next look waits for
            # news too (an empty look costs about as much as a small batch),
            # and comes no sooner than `min_step_seconds` after this batch
            # began, so that small commits meanwhile make one batch.
            if failures or not (written and (self._cut or stopping)):
                if written and not failures:
                    self._stopping.wait(self._step_began + self._min_step - time.monotonic())
                self._news.wait(wait)

    def _idle(self) -> bool:
        """Run `on_idle` once; whether it has more to do."""
        assert self._on_idle is not None
        try:
            return self._on_idle()
        except Exception:
            log.exception("%s: background work failed (trying again later)", self.name)
            self._news.wait(self._poll)  # not at once: it may fail the same way
            return True

    def _write_or_split(self, batch: Batch) -> None:
        """Write a batch; on a permanent error, write each half alone, down to
        single events that are dead-lettered: a poison event costs about
        log2(n) writes of its neighbours, not one write per event."""
        if not batch.records and self._positioned is None:
            return  # a filter dropped every record: nothing to write
        try:
            self._sink.write(batch)
        except AuditlakeError as exc:
            if exc.transient or isinstance(exc, ConfigError) or not batch.records:
                raise
            if len(batch.records) == 1:
                self._dead_lettered(batch.records[0], exc.message)
                if self._positioned is not None:  # move its position past the letter
                    self._sink.write(Batch([], end=batch.end))
                return
            for half in batch.split():
                self._write_or_split(half)

    def _position(self, subscription: Subscription) -> int:
        """Where this consumer's output is durable up to."""
        if self._positioned is not None:
            return self._positioned.position()
        return subscription.committed()

    def _subscribed(self) -> Subscription:
        """This consumer's subscription (under `_lock`), opened on first use."""
        if self._subscription is None:
            self._subscription = self._reader.subscribe(self.name)
            if self._positioned is None:
                self._adopt_legacy_cursor(self._subscription)
        return self._subscription

    def _adopt_legacy_cursor(self, subscription: Subscription) -> None:
        """A consumer that kept its cursor elsewhere before subscriptions
        existed (`resume_from`) resumes from it, once, if the journal holds
        that far (a journal restored or made anew would otherwise have its
        first events skipped)."""
        legacy = self._resume_from
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
    """The consumers of a service, their dead letters, and what closes the
    state and connections they share (`closers`, in order)."""

    def __init__(
        self,
        runners: list[ConsumerRunner],
        dead_letters: DeadLetters,
        closers: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.runners = runners
        self.dead_letters = dead_letters
        self._closers = closers

    def runner(self, name: str) -> ConsumerRunner:
        """The consumer named `name`; ConfigError naming the known ones."""
        for runner in self.runners:
            if runner.name == name:
                return runner
        known = ", ".join(r.name for r in self.runners)
        raise ConfigError(f"no consumer named {name!r}; known: {known}")

    def start(self) -> None:
        """Start every consumer's thread."""
        for runner in self.runners:
            runner.start()

    def close(self, timeout: float = 60.0) -> None:
        """Let every started consumer flush what the journal holds (each for
        up to `timeout` seconds), release every subscription, then close the
        shared state, unless a consumer is still writing with it."""
        stopped = [runner.close(timeout) for runner in self.runners]
        if all(stopped):
            for close in self._closers:
                close()

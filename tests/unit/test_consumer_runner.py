"""The consumer runner on the in-memory journal and dead letters: filters in
front of a sink, batches bounded by bytes, a sink that keeps its own
position, the wake-up and background work of its thread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from auditlake.consumers.filter import EventFilter
from auditlake.consumers.runner import ConsumerRunner
from auditlake.consumers.sink import Batch
from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.dead_letters import MemoryDeadLetters
from auditlake.errors import AuditlakeError, ConfigError
from auditlake.journal.memory import MemoryEventLog


def journal_with(*events: dict[str, Any], tenant: str = "acme") -> MemoryEventLog:
    journal = MemoryEventLog()
    journal.start()
    append(journal, *events, tenant=tenant)
    return journal


def append(journal: MemoryEventLog, *events: dict[str, Any], tenant: str = "acme") -> None:
    origin = Origin(tenant, "key:t", "api", datetime(2026, 1, 1, tzinfo=UTC))
    inputs = [msgspec.convert({"action": "x", **e}, EventInput) for e in events]
    journal.submit(normalize(inputs, origin, Limits())).result()


class ListSink:
    """A sink that keeps what it was given; refuses the ids in `poison`."""

    def __init__(self, poison: tuple[str, ...] = ()) -> None:
        self.batches: list[list[str]] = []
        self.poison = poison

    def write(self, batch: Batch) -> None:
        ids = [e.id for e in batch.events()]
        if any(i in self.poison for i in ids):
            raise AuditlakeError("poison")
        self.batches.append(ids)


class PositionedListSink(ListSink):
    """A sink that keeps its position with its output, as the recorder does."""

    def __init__(self, poison: tuple[str, ...] = ()) -> None:
        super().__init__(poison)
        self.at = 0

    def position(self) -> int:
        return self.at

    def write(self, batch: Batch) -> None:
        fresh = Batch([r for r in batch.records if r.position > self.at], end=batch.end)
        if fresh.records:
            super().write(fresh)
        self.at = max(self.at, batch.end)


def runner(journal: MemoryEventLog, sink: Any, **options: Any) -> ConsumerRunner:
    letters = options.pop("dead_letters", MemoryDeadLetters())
    return ConsumerRunner("test", sink, journal, letters, **options)


def test_a_filter_hands_the_sink_only_its_events_and_commits_past_the_rest() -> None:
    journal = journal_with({"id": "a", "action": "user.login"}, {"id": "b", "action": "repo.push"})
    append(journal, {"id": "c", "action": "user.logout"}, tenant="other")
    sink = ListSink()
    only_users = EventFilter(actions=["user.*"], tenants=["acme"])
    consumer = runner(journal, sink, event_filter=only_users)
    assert consumer.step(flush=True) == 3
    assert sink.batches == [["a"]] and consumer.committed() == 3
    append(journal, {"id": "d", "action": "repo.push"})  # nothing for it: no write at all
    assert consumer.step(flush=True) == 1
    assert sink.batches == [["a"]] and consumer.committed() == 4


@pytest.mark.parametrize(
    ("event_filter", "kept"),
    [
        (EventFilter(), ["a", "b", "c"]),
        (EventFilter(sources=["api"]), ["a", "b", "c"]),
        (EventFilter(sources=["cloudflare*"]), []),
        (EventFilter(tenants=["acme"], actions=["b.*", "c.exact"]), ["b"]),
    ],
)
def test_every_condition_of_a_filter_must_hold(event_filter: EventFilter, kept: list[str]) -> None:
    journal = journal_with(
        {"id": "a", "action": "a.x"}, {"id": "b", "action": "b.y"}, {"id": "c", "action": "c.z"}
    )
    sink = PositionedListSink()
    runner(journal, sink, event_filter=event_filter).step(flush=True)
    assert [i for batch in sink.batches for i in batch] == kept
    assert sink.at == 3  # a positioned sink moves past what was dropped too


def test_batches_are_bounded_by_bytes_as_well_as_by_count() -> None:
    journal = journal_with(*({"id": f"e{n}", "metadata": {"pad": "x" * 900}} for n in range(10)))
    body = journal.record(1)
    assert body is not None and 900 < len(body.body) < 1200
    sink = ListSink()
    consumer = runner(journal, sink, batch_bytes=3_000)
    while consumer.step(flush=True):
        pass
    # Each batch stops at the record that reaches the budget: 3 records.
    assert [len(b) for b in sink.batches] == [3, 3, 3, 1]
    assert [i for b in sink.batches for i in b] == [f"e{n}" for n in range(10)]


def test_a_positioned_sink_moves_past_a_dead_letter_at_the_end_of_a_batch() -> None:
    journal = journal_with(*({"id": f"p{n}"} for n in range(4)))
    letters = MemoryDeadLetters()
    sink = PositionedListSink(poison=("p3",))
    consumer = runner(journal, sink, dead_letters=letters)
    assert consumer.step(flush=True) == 4
    assert sink.at == 4 and consumer.committed() == 4
    assert [d.position for d in letters.letters("test")] == [4]
    assert consumer.output_through() == 3  # the letter has no output
    assert consumer.step(flush=True) == 0  # not handed over again
    with pytest.raises(ConfigError, match="journal order"):
        consumer.replay_dead_letters()


def test_a_dead_letter_keeps_its_event_for_a_replay() -> None:
    journal = journal_with({"id": "ok"}, {"id": "bad"})
    letters = MemoryDeadLetters()
    sink = ListSink(poison=("bad",))
    consumer = runner(journal, sink, dead_letters=letters)
    consumer.step(flush=True)
    [letter] = letters.letters("test")
    assert letter.item is not None and msgspec.json.decode(letter.item)["id"] == "bad"
    sink.poison = ()
    assert consumer.replay_dead_letters() == (1, 0)
    assert sink.batches == [["ok"], ["bad"]] and letters.letters("test") == []


def test_a_wake_ends_the_wait_and_idle_work_runs_when_nothing_waits() -> None:
    journal = journal_with()
    sink = PositionedListSink()
    idle_calls: list[float] = []
    idle_done = threading.Event()

    def idle() -> bool:
        idle_calls.append(time.monotonic())
        if len(idle_calls) == 3:  # three rounds of background work, then done
            idle_done.set()
        return len(idle_calls) < 3

    written = threading.Event()
    consumer = runner(
        journal,
        sink,
        batch_events=1,
        batch_seconds=0,
        poll_seconds=30,  # only a wake can end the wait within the test
        on_idle=idle,
        on_batch=lambda events, seconds, at: written.set(),
    )
    consumer.start()
    try:
        assert idle_done.wait(5), "idle work did not run"
        append(journal, {"id": "w"})
        started = time.monotonic()
        consumer.wake()
        assert written.wait(5)
        assert time.monotonic() - started < 5 and sink.batches == [["w"]]
    finally:
        consumer.close(timeout=5)
    assert len(idle_calls) == 3  # it said it was done


def test_failing_background_work_waits_before_it_is_tried_again() -> None:
    calls: list[float] = []

    def idle() -> bool:
        calls.append(time.monotonic())
        raise RuntimeError("disk full")

    consumer = runner(journal_with(), PositionedListSink(), poll_seconds=0.05, on_idle=idle)
    consumer.start()
    time.sleep(0.3)  # a real thread: bounded, and the count is what is asserted
    consumer.close(timeout=5)
    assert 2 <= len(calls) <= 10  # about one try per poll, not a busy loop


def test_the_thread_looks_again_at_once_only_after_a_batch_a_limit_cut() -> None:
    journal = journal_with(*({"id": f"c{n}"} for n in range(5)))
    sink = PositionedListSink()
    written = threading.Semaphore(0)

    def on_batch(_events: int, _seconds: float, at: int) -> None:
        if at == 5:  # an event comes while the batch that took all there was ends
            append(journal, {"id": "c5"})
        written.release()

    consumer = runner(
        journal, sink, batch_events=1, batch_seconds=0, catch_up_events=2, poll_seconds=30,
        on_batch=on_batch,
    )  # fmt: skip
    consumer.start()
    try:
        for _ in range(3):  # two batches cut at 2 events, then the rest: no waiting between
            assert written.acquire(timeout=5)
        assert sink.batches == [["c0", "c1"], ["c2", "c3"], ["c4"]]
        # No look at once after a batch that took all there was: c5 waits
        # for news (or the poll).
        assert not written.acquire(timeout=0.3)
        consumer.wake()
        assert written.acquire(timeout=5) and sink.batches[-1] == ["c5"]
    finally:
        consumer.close(timeout=5)


def test_a_batch_is_reported_at_the_sinks_position() -> None:
    class MovedFurther(PositionedListSink):
        """As if another recorder on the same store indexed two more."""

        def write(self, batch: Batch) -> None:
            super().write(batch)
            self.at = batch.end + 2

    told: list[int] = []
    journal = journal_with(*({"id": f"m{n}"} for n in range(3)))
    consumer = runner(journal, MovedFurther(), on_batch=lambda _n, _s, at: told.append(at))
    assert consumer.step(flush=True) == 3
    assert told == [5]  # not the batch's end, 3: the parent would wake it for nothing


def test_the_next_batch_begins_no_sooner_than_min_step_seconds_after_the_last() -> None:
    journal = journal_with({"id": "p0"})
    sink = PositionedListSink()
    written = threading.Semaphore(0)
    consumer = runner(
        journal, sink, batch_events=1, batch_seconds=0, poll_seconds=30, min_step_seconds=0.5,
        on_batch=lambda _n, _s, _at: written.release(),
    )  # fmt: skip
    consumer.start()
    try:
        assert written.acquire(timeout=5)
        started = time.monotonic()
        for event_id in ("p1", "p2"):  # two commits, each with its news at once
            append(journal, {"id": event_id})
            consumer.wake()
        assert written.acquire(timeout=5)
        assert time.monotonic() - started >= 0.4
        assert sink.batches == [["p0"], ["p1", "p2"]]
    finally:
        consumer.close(timeout=5)

"""Backpressure from search indexing: writes wait while the recorder is too
far behind, and get a 503 if it does not catch up in time; every source
goes through it (requests await it, pollers and rehydrate block on it)."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import Future

import pytest

from auditlake.config import Settings
from auditlake.errors import Overloaded
from auditlake.ingest import Admission
from auditlake.journal.base import resolve
from auditlake.journal.memory import MemoryEventLog
from auditlake.runtime import Services


class FakeRecorder:
    def __init__(self, lag: int) -> None:
        self.backlog = lag
        self.rate = 0.0

    def start(self) -> None: ...
    def close(self) -> None: ...
    def healthy(self) -> bool:
        return True

    def lag(self) -> int:
        return self.backlog

    def seconds_behind(self) -> float:
        return self.backlog / self.rate if self.rate else 0.0

    def sync(self, head: int = 0) -> Future[None]:
        future: Future[None] = Future()
        future.set_result(None)
        return future


def admission(lag: int, rate: float = 0.0) -> tuple[Admission, FakeRecorder]:
    """Bounds of 100 events or 0.5 s of indexing, a wait of 0.2 s on a clock
    that moves 0.1 s each time it is read (no test waits for real)."""
    recorder = FakeRecorder(lag)
    recorder.rate = rate
    ticks = itertools.count()
    chosen = Admission(
        recorder,
        max_lag_events=100,
        max_lag_seconds=0.5,
        wait_seconds=0.2,
        clock=lambda: next(ticks) / 10,
    )
    return chosen, recorder


def test_writes_pass_while_the_index_keeps_up() -> None:
    chosen = admission(lag=100)[0]
    asyncio.run(chosen.wait())
    chosen.wait_blocking()


def test_writes_wait_for_the_index_to_catch_up() -> None:
    chosen, recorder = admission(lag=5000)
    chosen._wait_seconds = 1e9  # only the catching up ends this wait

    async def scenario() -> None:
        waiting = asyncio.create_task(chosen.wait())
        await asyncio.sleep(0.02)
        assert not waiting.done()
        recorder.backlog = 10
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("blocking", [False, True])
def test_writes_are_refused_when_the_index_stays_behind(blocking: bool) -> None:
    chosen = admission(lag=5000)[0]
    with pytest.raises(Overloaded):
        chosen.wait_blocking() if blocking else asyncio.run(chosen.wait())


def test_a_slow_index_is_bounded_by_time_not_only_by_count() -> None:
    # 60 events are under the count bound, but 0.6 s of work at 100 events/s.
    with pytest.raises(Overloaded):
        asyncio.run(admission(lag=60, rate=100.0)[0].wait())
    asyncio.run(admission(lag=40, rate=100.0)[0].wait())  # 0.4 s: admitted


def test_the_service_admits_through_its_recorder_as_settings_bound_it() -> None:
    log = MemoryEventLog()
    settings = Settings(max_index_lag_events=100, admit_wait_seconds=0.0)
    services = Services(settings, log, log, keys=None, recorder=FakeRecorder(5000))  # type: ignore[arg-type]
    assert services.ingest.admission.behind()
    with pytest.raises(Overloaded):
        services.ingest.admission.wait_blocking()


def test_a_search_stops_waiting_for_a_slow_index_and_late_results_are_harmless() -> None:
    log = MemoryEventLog()
    recorder = FakeRecorder(5000)
    pending: Future[None] = Future()
    recorder.sync = lambda head=0: pending  # type: ignore[method-assign]
    chosen = Services(Settings(search_wait_seconds=0.05), log, log, keys=None, recorder=recorder)  # type: ignore[arg-type]
    asyncio.run(chosen.wait_searchable())  # returns after the timeout, no error
    assert pending.cancelled()
    resolve(pending, None)  # what the recorder does later: must not raise

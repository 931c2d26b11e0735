"""Backpressure from search indexing: writes wait while the recorder is too
far behind, and get a 503 if it does not catch up in time."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

import pytest

from auditlake.config import Settings
from auditlake.errors import Overloaded
from auditlake.journal.base import resolve
from auditlake.journal.memory import MemoryEventLog
from auditlake.web.services import Services


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

    def sync(self) -> Future[None]:
        future: Future[None] = Future()
        future.set_result(None)
        return future


def services(lag: int, rate: float = 0.0) -> tuple[Services, FakeRecorder]:
    log = MemoryEventLog()
    recorder = FakeRecorder(lag)
    recorder.rate = rate
    settings = Settings(max_index_lag_events=100, max_index_lag_seconds=0.5, admit_wait_seconds=0.2)
    return Services(settings, log, log, keys=None, recorder=recorder), recorder  # type: ignore[arg-type]


def test_writes_pass_while_the_index_keeps_up() -> None:
    asyncio.run(services(lag=100)[0].admit())


def test_writes_wait_for_the_index_to_catch_up() -> None:
    chosen, recorder = services(lag=5000)

    async def scenario() -> None:
        waiting = asyncio.create_task(chosen.admit())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        recorder.backlog = 10
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_writes_are_refused_when_the_index_stays_behind() -> None:
    with pytest.raises(Overloaded):
        asyncio.run(services(lag=5000)[0].admit())


def test_a_slow_index_is_bounded_by_time_not_only_by_count() -> None:
    # 60 events are under the count bound, but 0.6 s of work at 100 events/s.
    with pytest.raises(Overloaded):
        asyncio.run(services(lag=60, rate=100.0)[0].admit())
    asyncio.run(services(lag=40, rate=100.0)[0].admit())  # 0.4 s: admitted


def test_a_search_stops_waiting_for_a_slow_index_and_late_results_are_harmless() -> None:
    chosen, recorder = services(lag=5000)
    pending: Future[None] = Future()
    recorder.sync = lambda: pending  # type: ignore[method-assign]
    chosen.settings = Settings(search_wait_seconds=0.05)
    asyncio.run(chosen.wait_searchable())  # returns after the timeout, no error
    assert pending.cancelled()
    resolve(pending, None)  # what the recorder does later: must not raise

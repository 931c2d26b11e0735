"""Process tuning: freed memory is returned by a timer thread, never by the
caller (the event loop), and at most once per interval however many ask."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import pytest

from auditlake import process_tuning
from auditlake.process_tuning import _Trimmer, freeze_startup_objects, release_freed_memory


class FakeLibc:
    """Records the threads malloc_trim is called on."""

    def __init__(self) -> None:
        self.trims: list[threading.Thread] = []
        self.trimmed = threading.Event()

    def malloc_trim(self, _pad: int) -> int:
        self.trims.append(threading.current_thread())
        self.trimmed.set()
        return 1

    def mallopt(self, _param: int, _value: int) -> int:
        return 1


class FakeTimers:
    """A clock the test moves, and the timers scheduled on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, wait: float, call: Callable[[], None]) -> None:
        self.scheduled.append((self.now + wait, call))

    def advance(self, seconds: float) -> None:
        """Move the clock and run the timers that are due."""
        self.now += seconds
        due = [t for t in self.scheduled if t[0] <= self.now]
        self.scheduled = [t for t in self.scheduled if t[0] > self.now]
        for _at, call in due:
            call()


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(process_tuning, "_LIBC", fake)
    return fake


def test_a_trim_never_runs_on_the_calling_thread(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_tuning, "_TRIMMER", _Trimmer(0.3))  # real timer threads
    release_freed_memory()  # the first one, with no trim before it
    assert libc.trimmed.wait(10)
    assert libc.trims[0] is not threading.main_thread()


def test_many_requests_make_one_trim_per_interval(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    timers = FakeTimers()
    trimmer = _Trimmer(0.3, clock=lambda: timers.now, schedule=timers.schedule)
    monkeypatch.setattr(process_tuning, "_TRIMMER", trimmer)
    for _ in range(50):
        release_freed_memory()
    assert libc.trims == [] and len(timers.scheduled) == 1  # never inline, scheduled once
    timers.advance(0.0)  # the first is due at once
    assert len(libc.trims) == 1
    for _ in range(50):  # within the interval: one more trim, once it has passed
        release_freed_memory()
    timers.advance(0.2)
    assert len(libc.trims) == 1
    timers.advance(0.1)
    assert len(libc.trims) == 2
    timers.advance(5.0)
    assert len(libc.trims) == 2 and timers.scheduled == []


def test_freeze_startup_objects_freezes_what_exists() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

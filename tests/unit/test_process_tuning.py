"""Process tuning: freed memory is returned by a timer thread, never by the
caller (the event loop), and at most once per interval however many ask."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from auditlake import process_tuning
from auditlake.process_tuning import _Trimmer, freeze_startup_objects, release_freed_memory


class FakeLibc:
    """Records the threads malloc_trim is called on."""

    def __init__(self) -> None:
        self.trims: list[threading.Thread] = []

    def malloc_trim(self, _pad: int) -> int:
        self.trims.append(threading.current_thread())
        return 1

    def mallopt(self, _param: int, _value: int) -> int:
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(process_tuning, "_LIBC", fake)
    monkeypatch.setattr(process_tuning, "_TRIMMER", _Trimmer(0.3))
    return fake


def _wait_for(seconds: float, libc: FakeLibc, count: int) -> None:
    deadline = time.monotonic() + seconds
    while len(libc.trims) < count:
        assert time.monotonic() < deadline, libc.trims
        time.sleep(0.01)


def test_a_trim_never_runs_on_the_calling_thread(libc: FakeLibc) -> None:
    release_freed_memory()  # the first one, with no trim before it
    assert threading.current_thread() not in libc.trims
    _wait_for(10, libc, 1)
    assert libc.trims[0] is not threading.main_thread()


def test_many_requests_make_one_trim_per_interval(libc: FakeLibc) -> None:
    for _ in range(50):
        release_freed_memory()
    _wait_for(10, libc, 1)
    for _ in range(50):  # within the interval: one more trim, once it has passed
        release_freed_memory()
    _wait_for(10, libc, 2)
    time.sleep(0.5)
    assert len(libc.trims) == 2
    assert threading.main_thread() not in libc.trims


def test_freeze_startup_objects_freezes_what_exists() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

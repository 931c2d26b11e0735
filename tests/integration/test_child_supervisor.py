"""The one supervisor of the server's helper processes: messages both ways,
a lowered priority, a restart after a crash, giving up after quick deaths,
and a close that kills a child which does not stop in time."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest

from auditlake import child_process
from auditlake.child_process import MAX_QUICK_DEATHS, ChildSupervisor


def greet_then_wait_for_close(pipe: Connection, greeting: str) -> None:
    pipe.send((greeting, os.getpid(), os.nice(0)))
    while pipe.recv() != ("close",):
        pass
    pipe.send(("bye",))


def exit_at_once(_pipe: Connection) -> None:
    raise SystemExit(3)


def report_then_exit(pipe: Connection) -> None:
    pipe.send(("started", os.getpid()))


def ignore_everything(pipe: Connection) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pipe.send(("started", os.getpid()))
    time.sleep(60)


def wait_for(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def supervise(target: Callable[..., None], args: tuple[Any, ...] = (), **options: Any) -> Any:
    got: list[Any] = []
    spawns: list[float] = []
    supervisor = ChildSupervisor(
        "test-child", target, args, niceness=options.pop("niceness", 3),
        close_seconds=options.pop("close_seconds", 10.0), reports=options.pop("reports", False),
        on_message=options.pop("on_message", got.append),
        on_spawn=lambda: spawns.append(time.monotonic()),
    )  # fmt: skip
    return supervisor, got, spawns


def test_messages_go_both_ways_and_the_child_runs_niced() -> None:
    supervisor, got, spawns = supervise(greet_then_wait_for_close, ("hello",))
    supervisor.start()
    wait_for(lambda: len(got) == 1)
    greeting, pid, niceness = got[0]
    assert greeting == "hello" and pid != os.getpid()
    assert niceness == os.nice(0) + 3
    supervisor.close()
    assert got[1:] == [("bye",)]
    assert not supervisor.healthy() and len(spawns) == 1


def test_a_killed_child_is_started_again() -> None:
    supervisor, got, spawns = supervise(greet_then_wait_for_close, ("hello",))
    supervisor.start()
    try:
        wait_for(lambda: len(got) == 1)
        os.kill(got[0][1], signal.SIGKILL)
        wait_for(lambda: len(got) == 2)
        assert got[1][1] != got[0][1] and len(spawns) == 2
        assert supervisor.healthy()
    finally:
        supervisor.close()


def test_it_gives_up_after_quick_deaths_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child_process, "RESTART_SECONDS", 0.01)
    supervisor, _got, spawns = supervise(exit_at_once)
    supervisor.start()
    wait_for(lambda: not supervisor.healthy())
    assert len(spawns) == MAX_QUICK_DEATHS
    assert supervisor.process is not None and supervisor.process.exitcode == 3


def test_a_child_that_does_not_close_is_killed_after_close_seconds() -> None:
    supervisor, got, _spawns = supervise(ignore_everything, close_seconds=0.5)
    supervisor.start()
    wait_for(lambda: len(got) == 1)
    started = time.monotonic()
    supervisor.close()
    assert time.monotonic() - started < 5
    assert supervisor.process is not None and not supervisor.process.is_alive()


def test_a_child_that_reported_is_restarted_however_often_it_dies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For a child that reports, only deaths before the report are quick: one
    that crashed while working may recover, so it is started again."""
    monkeypatch.setattr(child_process, "RESTART_SECONDS", 0.01)
    supervisor, got, spawns = supervise(report_then_exit, reports=True)
    supervisor.start()
    try:
        wait_for(lambda: len(spawns) > MAX_QUICK_DEATHS + 1)
        assert supervisor.healthy()
    finally:
        supervisor.close()
    assert len(got) >= MAX_QUICK_DEATHS


def test_a_failing_message_handler_leaves_the_child_running() -> None:
    def refuse(message: Any) -> None:
        raise ValueError(f"cannot handle {message!r}")

    supervisor, _got, spawns = supervise(greet_then_wait_for_close, ("hello",), on_message=refuse)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.process is not None)
        time.sleep(1.0)  # the greeting came and was refused
        assert supervisor.healthy() and len(spawns) == 1
        assert supervisor.process is not None and supervisor.process.is_alive()
    finally:
        supervisor.close()

"""The embedded recorder in a child process, so indexing for search runs on
another core than ingest instead of sharing the server's interpreter lock.

The child runs the recorder's `ConsumerRunner`, in the `ConsumerGroup` that
the `build` callable it is given makes (the composition root's). Its sink
keeps its position in the store's own transaction, so killing either
process at any moment loses nothing: a new child resumes from the stored
position.

Parent and child talk over one pipe. Parent -> child: `("head", seq)` after
a journal commit the child has not indexed (it wakes the runner),
`("close",)` at shutdown.
Child -> parent: `("at", seq, events, seconds, head)` after each batch and
once at start, `head` being the journal's last seq as the child last read
it. The child exits when the parent goes away.
"""

from __future__ import annotations

import functools
import operator
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from auditlake.child_process import ChildSupervisor
from auditlake.consumers.runner import BatchObserver, ConsumerGroup
from auditlake.journal.base import resolve
from auditlake.process_tuning import freeze_startup_objects

RECORDER_NICENESS = 5
# How long close() lets the child catch up (the backlog is at most
# max_index_lag_seconds of indexing) before it kills it.
CLOSE_SECONDS = 20.0
# Builds the child's group of one runner, the recorder; told after each batch.
RecorderBuilder = Callable[[BatchObserver], ConsumerGroup]
# Steps at least this large measure the indexing rate; smaller ones mostly
# measure the per-step overhead.
RATE_MIN_EVENTS = 1000
RATE_WEIGHT = 0.3  # of the newest step in the moving average


class RecorderProcess:
    """`Consumer` that indexes the journal for search in a child process,
    run by a `ChildSupervisor` (restarted when it dies; see child_process).
    The child's reports move the position that `sync()` and `lag()` read.
    """

    def __init__(
        self, build: RecorderBuilder, *, on_step: Callable[[int, float], None] | None = None
    ) -> None:
        self._on_step = on_step
        self._lock = threading.Lock()  # guards the fields below
        self._head = 0
        self._position = -1  # unknown until a child reports
        self._rate = 0.0  # events/s of recent large steps; 0.0 = unknown
        self._waiters: list[tuple[int, Future[None]]] = []
        self._wakeup_sent = False
        self._child = ChildSupervisor(
            "recorder",
            run_child,
            (build,),
            niceness=RECORDER_NICENESS,  # indexing yields to ingest; it catches up after
            close_seconds=CLOSE_SECONDS,
            reports=True,  # at start: a child that never reports cannot open the store
            on_message=self._on_report,
            on_spawn=self._on_spawn,
        )

    @property
    def process(self) -> BaseProcess | None:
        """The current child, if one runs."""
        return self._child.process

    def start(self) -> None:
        """Start the child and wait until it reports its stored position."""
        self._child.start()
        deadline = time.monotonic() + 60
        while self._position < 0:
            if not self.healthy() or time.monotonic() > deadline:
                raise RuntimeError("the recorder process did not start")
            time.sleep(0.01)

    def notify(self, head: int) -> None:
        """The journal holds events up to `head` (called after each group commit).

        A wake-up is sent only while none is on its way (the child reads the
        head from the journal itself; a report crossing this news may add a
        second, which the child's runner merges), so this never blocks the
        journal's writer.
        """
        with self._lock:
            self._head = max(self._head, head)
            # Indexed already (the child read the commit before this news
            # came), or a wake-up is on its way: the child's next report
            # says where it is, and wakes it again if it is behind.
            if self._wakeup_sent or head <= self._position:
                return
            self._wakeup_sent = True
        self._child.send(("head", head))

    def sync(self, head: int = 0) -> Future[None]:
        """Resolves once everything up to `head` (the journal's, which the
        caller read), or up to the last head notified, is indexed."""
        future: Future[None] = Future()
        with self._lock:
            self._head = max(self._head, head)
            if self._position >= self._head or not self.healthy():
                future.set_result(None)
            else:
                self._waiters.append((self._head, future))
        return future

    def lag(self) -> int:
        """Events in the journal not yet searchable."""
        return max(0, self._head - self._position)

    def seconds_behind(self) -> float:
        """About how long indexing the current lag takes at the recent rate."""
        rate = self._rate
        return self.lag() / rate if rate else 0.0

    def healthy(self) -> bool:
        """False once the supervisor has stopped (closed, or given up)."""
        return self._child.healthy()

    def close(self) -> None:
        """Let the child index what the journal holds, then stop it."""
        self._child.close()
        self._release_waiters(lambda _target: True)

    def _on_spawn(self) -> None:
        with self._lock:
            self._wakeup_sent = False

    def _on_report(self, report: tuple[Any, ...]) -> None:
        """A child's `("at", position, events, seconds, head)`."""
        _kind, at, events, seconds, head = report
        with self._lock:
            self._position = at
            self._head = max(self._head, head)
            # Commits that came while the child was busy may be newer than
            # what it read: wake it once more rather than let it sleep.
            behind = self._head if self._head > at else 0
            self._wakeup_sent = bool(behind)
        if behind:
            self._child.send(("head", behind))
        self._release_waiters(functools.partial(operator.ge, at))
        if events >= RATE_MIN_EVENTS and seconds > 0:
            rate = events / seconds
            self._rate = rate if not self._rate else self._rate + RATE_WEIGHT * (rate - self._rate)
        if events and self._on_step is not None:
            self._on_step(events, seconds)

    def _release_waiters(self, ready: Callable[[int], bool]) -> None:
        with self._lock:
            done = [f for target, f in self._waiters if ready(target)]
            self._waiters = [(t, f) for t, f in self._waiters if not ready(t)]
        for future in done:
            resolve(future, None)


def run_child(pipe: Connection, build: RecorderBuilder) -> None:
    """The child: run the recorder's runner, woken by the parent's news of
    commits, until the parent says close (or goes away)."""

    def report(events: int, seconds: float, at: int) -> None:  # in the runner's thread
        _tell(pipe, at, events, seconds, runner.head())

    group = build(report)
    (runner,) = group.runners
    freeze_startup_objects()
    if not _tell(pipe, runner.committed(), 0, 0.0, runner.head()):
        return
    runner.start()
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):  # the parent is gone; what was indexed is committed
            return
        if message[0] == "close":
            group.close(CLOSE_SECONDS)  # its connections too: the last one out folds the WAL in
            return
        runner.wake()


def _tell(pipe: Connection, at: int, events: int, seconds: float, head: int) -> bool:
    """Report progress; False when the parent is gone."""
    try:
        pipe.send(("at", at, events, seconds, head))
    except OSError:
        return False
    return True

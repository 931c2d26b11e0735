"""The server's helper processes (the recorder, the consumers): how each is
started, watched and stopped, once for all.

A `ChildSupervisor` runs `target(pipe, *args)` in a spawned child that first
arranges to die with the server, lowers its priority and leaves Ctrl-C to the
server. Parent and child share one duplex pipe: the parent sends `("close",)`
at shutdown (and whatever else the pair agrees on); each message the child
sends reaches `on_message` in the supervisor's thread. A child that dies is
started again after RESTART_SECONDS; after MAX_QUICK_DEATHS quick deaths in
a row the supervisor gives up and `healthy()` turns False (the recorder's is
part of readiness). A death is quick when it comes before the child's first
message, for a child that `reports` (it cannot start: a restart will not
help, while one that crashed after reporting may recover); otherwise when
it comes within QUICK_DEATH_SECONDS of its start.

Lifecycle: `start()`, then `close()`: the child is told to close and given
`close_seconds` to finish its work (its output and position are durable, so
killing it after that loses nothing but time); nothing starts again after.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
RESTART_SECONDS = 1.0
QUICK_DEATH_SECONDS = 10.0
MAX_QUICK_DEATHS = 5
CLOSE = ("close",)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the parent dies (Linux), so a
    crashed server never leaves a helper behind that still uses its files."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


class ChildSupervisor:
    """One helper process, restarted when it dies (see the module's docstring).

    `name` names its thread and its log lines; `niceness` is added to the
    child's; `reports`: the child sends a message once it runs; `on_spawn()`
    runs after each (re)start, before any message.
    """

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        niceness: int,
        close_seconds: float,
        reports: bool = False,
        on_message: Callable[[Any], None] = lambda _message: None,
        on_spawn: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._target, self._args = target, args
        self._niceness = niceness
        self._close_seconds = close_seconds
        self._reports = reports
        self._on_message = on_message
        self._on_spawn = on_spawn
        self._lock = threading.Lock()  # guards the fields below
        self._closing = threading.Event()
        self._process: BaseProcess | None = None
        self._pipe: Connection | None = None
        self._thread: threading.Thread | None = None

    @property
    def process(self) -> BaseProcess | None:
        """The current child, if one runs."""
        return self._process

    def start(self) -> None:
        """Start the supervisor's thread, which starts the child."""
        self._thread = threading.Thread(target=self._supervise, name=self.name, daemon=True)
        self._thread.start()

    def healthy(self) -> bool:
        """False once the supervisor stopped: closed, or given up."""
        return self._thread is not None and self._thread.is_alive()

    def send(self, message: tuple[Any, ...]) -> None:
        """Send `message` to the child; a child that is gone misses it."""
        with self._lock:
            pipe = self._pipe
            if pipe is None or pipe.closed:
                return
            try:
                pipe.send(message)
            except OSError:
                log.warning("the %s process is gone", self.name)

    def close(self) -> None:
        """Tell the child to close, wait `close_seconds` for it, then kill it."""
        with self._lock:
            self._closing.set()
        self.send(CLOSE)
        thread = self._thread
        if thread is None:
            return
        thread.join(self._close_seconds)
        if thread.is_alive():
            log.error("the %s process did not stop in %s s; killing it", self.name,
                      self._close_seconds)  # fmt: skip
            with self._lock:
                process = self._process
            if process is not None:
                process.kill()
            thread.join(self._close_seconds)

    def _supervise(self) -> None:
        # Children start with SIGTERM blocked (a new process inherits the
        # mask of the thread that starts it) until they ignore it: a service
        # manager's stop to the whole group must not kill one mid-import.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        quick_deaths = 0
        while (process := self._spawn()) is not None:
            started = time.monotonic()
            reported = self._relay()
            process.join()
            if self._closing.is_set():
                return
            if self._reports:
                quick = not reported
            else:
                quick = time.monotonic() - started < QUICK_DEATH_SECONDS
            quick_deaths = quick_deaths + 1 if quick else 0
            log.error("the %s process exited (code %s); restarting", self.name, process.exitcode)
            if quick_deaths >= MAX_QUICK_DEATHS:
                log.error("the %s process keeps dying; giving up", self.name)
                return
            self._closing.wait(RESTART_SECONDS)

    def _relay(self) -> bool:
        """Hand the child's messages to `on_message` until it goes away;
        whether it sent any."""
        pipe = self._pipe
        assert pipe is not None
        received = False
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                return received
            received = True
            try:
                self._on_message(message)
            except Exception:  # this thread must live: the child dies with it
                log.exception("the %s process's message %r was not handled", self.name, message)

    def _spawn(self) -> BaseProcess | None:
        """Start a child, unless closing."""
        context = multiprocessing.get_context("spawn")
        with self._lock:
            if self._closing.is_set():
                return None
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=_child_main,
                args=(self._target, child_end, self._args, os.getpid(), self._niceness, self.name),
                daemon=True,
            )
            process.start()
            child_end.close()
            if self._pipe is not None:  # the end of the child that died
                self._pipe.close()
            self._pipe, self._process = parent_end, process
        self._on_spawn()
        return process


def _child_main(
    target: Callable[..., None],
    pipe: Connection,
    args: tuple[Any, ...],
    parent: int,
    niceness: int,
    name: str,
) -> None:
    """What every child does first, then its work."""
    die_with_parent(parent)
    os.nice(niceness)  # the server's own work comes first
    # Ctrl-C, and a service manager's SIGTERM to the whole process group, are
    # the parent's to handle: it tells the child to close, after its drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one that came meanwhile is dropped
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    logging.basicConfig(level=logging.INFO, format=f"{name}: %(levelname)s %(message)s")
    target(pipe, *args)

"""The journal consumers (the archiver) in a child process at low priority.

Archiving is off the acknowledgement path and has a minute to do its work,
so it must not take CPU or the interpreter lock from ingest and indexing:
inside the server's process, merging Parquet files cost the server ~50 us of
CPU per event during a burst of batches (bench/ingest.py, 2 cores). As a
niced child it runs on what the other two leave and catches up after a
burst; its backlog is the cursors' lag in /metrics.

Parent -> child over a pipe: `("close",)` at shutdown, after the journal has
drained; the child then flushes what the journal holds and exits. The child
dies with the parent. Cursors are durable, so a new child (after a crash of
either) resumes where the last output was made durable.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection

from auditlake.child_process import die_with_parent
from auditlake.config import Settings
from auditlake.consumers.runner import ConsumerGroup, ConsumerRunner

log = logging.getLogger(__name__)
CONSUMER_NICENESS = 19  # the lowest: the recorder (5) and ingest (0) come first
RESTART_SECONDS = 1.0
QUICK_DEATH_SECONDS = 10.0
MAX_QUICK_DEATHS = 5
# How long stop() lets the child flush before it kills it (its cursors are
# durable: the next start archives the rest), so a shutdown fits in the 90 s
# a service manager usually gives, even when the lake cannot be written.
STOP_SECONDS = 45.0


class ConsumerProcess:
    """Runs `build_consumers(settings)` in a supervised child process.

    `runners` are parent-side twins of the child's consumers: they are never
    started and serve only `lag()`, read from the durable cursors.
    """

    def __init__(self, settings: Settings, group: ConsumerGroup) -> None:
        self._settings = settings
        self._group = group
        self.runners: list[ConsumerRunner] = group.runners
        self._closing = threading.Event()
        self._lock = threading.Lock()  # guards the process and the pipe
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        """Start the supervisor, which starts the child."""
        self._supervisor = threading.Thread(target=self._supervise, name="consumers", daemon=True)
        self._supervisor.start()

    def output_through(self, consumer: str) -> int:
        """The last journal seq up to which `consumer`'s output has every event."""
        return next(r for r in self.runners if r.name == consumer).output_through()

    def healthy(self) -> bool:
        """False once the supervisor has stopped (stopped, or given up)."""
        return self._supervisor is not None and self._supervisor.is_alive()

    def stop(self) -> None:
        """Let the child flush what the journal holds, then stop it."""
        with self._lock:
            self._closing.set()
            process, pipe = self._process, self._pipe
            if pipe is not None:
                try:
                    pipe.send(("close",))
                except OSError:
                    log.warning("the consumer process is gone")
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.join(STOP_SECONDS)  # it joins the child, which is flushing
            if supervisor.is_alive() and process is not None:
                log.error("the consumer process did not flush in time; killing it")
                process.kill()
                supervisor.join()
        for runner in self.runners:
            runner.stop()
        self._group.state.close()

    def _supervise(self) -> None:
        quick_deaths = 0
        while (process := self._spawn()) is not None:
            started = time.monotonic()
            process.join()
            if self._closing.is_set():
                return
            quick_deaths = (
                quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS else 0
            )
            log.error("the consumer process exited (code %s); restarting", process.exitcode)
            if quick_deaths >= MAX_QUICK_DEATHS:
                log.error("the consumer process keeps dying; giving up")
                return
            self._closing.wait(RESTART_SECONDS)

    def _spawn(self) -> multiprocessing.process.BaseProcess | None:
        context = multiprocessing.get_context("spawn")
        with self._lock:
            if self._closing.is_set():
                return None
            child_end, parent_end = context.Pipe(duplex=False)  # receiver, sender
            process = context.Process(
                target=run_child, args=(child_end, self._settings, os.getpid()), daemon=True
            )
            process.start()
            child_end.close()
            self._pipe, self._process = parent_end, process
        return process


def run_child(pipe: Connection, settings: Settings, parent: int) -> None:
    """The child: run the consumers until the parent says close (or goes away)."""
    die_with_parent(parent)
    os.nice(CONSUMER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=logging.INFO, format="consumers: %(levelname)s %(message)s")
    from auditlake.app import build_consumers  # the composition root

    group = build_consumers(settings)
    group.start()
    try:
        pipe.recv()  # ("close",)
    except (EOFError, OSError):  # the parent is gone: what was written is durable
        return
    group.stop()

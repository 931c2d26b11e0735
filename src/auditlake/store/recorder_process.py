"""The embedded recorder in a child process, so indexing for search runs on
another core than ingest instead of sharing the server's interpreter lock.

Parent and child talk over one pipe. Parent -> child: `("head", seq)` after
each journal commit, `("close",)` at shutdown. Child -> parent: `("at", seq,
events, seconds, head)` after each step and once at start, `head` being the
journal's last seq as the child last read it. The child owns the
store's write connection; its position lives in the store (see `step()`),
so killing either process at any moment loses nothing: a new child resumes
from the stored position. The child exits when the parent goes away.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import operator
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from auditlake.child_process import die_with_parent
from auditlake.journal.base import resolve
from auditlake.process_tuning import freeze_startup_objects
from auditlake.sqlite_db import DbConnection, connect, open_database, query, scalar
from auditlake.store.sqlite_recorder import position, reindex_text, step

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
RECORDER_NICENESS = 5
RESTART_SECONDS = 1.0
RETRY_SECONDS = 1.0  # between tries when indexing fails
# How long close() lets the child catch up (the backlog is at most
# max_index_lag_seconds of indexing) before it kills it.
CLOSE_SECONDS = 20.0
MAX_QUICK_DEATHS = 5
STORE_CACHE_KIB = 256 * 1024
STORE_CHECKPOINT_PAGES = 50_000
# Steps at least this large measure the indexing rate; smaller ones mostly
# measure the per-step overhead.
RATE_MIN_EVENTS = 1000
RATE_WEIGHT = 0.3  # of the newest step in the moving average


class RecorderProcess:
    """`Consumer` that indexes the journal for search in a child process.

    One supervisor thread spawns the child (so the child's parent-death signal
    is tied to a thread that lives as long as the recorder), relays its
    reports, and starts a new child if one dies. It gives up, and `healthy()`
    turns False, after MAX_QUICK_DEATHS children in a row died before
    reporting once.
    """

    def __init__(
        self,
        journal_path: Path,
        store_path: Path,
        *,
        batch_events: int = 20_000,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        self._args = (str(journal_path), str(store_path), batch_events)
        self._on_step = on_step
        self._lock = threading.Lock()  # guards the fields below
        self._send_lock = threading.Lock()  # guards the pipe and the process
        self._head = 0
        self._position = -1  # unknown until a child reports
        self._rate = 0.0  # events/s of recent large steps; 0.0 = unknown
        self._waiters: list[tuple[int, Future[None]]] = []
        self._wakeup_sent = False
        self._closing = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        """Start the child and wait until it reports its stored position."""
        self._supervisor = threading.Thread(target=self._supervise, name="recorder", daemon=True)
        self._supervisor.start()
        deadline = time.monotonic() + 60
        while self._position < 0:
            if not self.healthy() or time.monotonic() > deadline:
                raise RuntimeError("the recorder process did not start")
            time.sleep(0.01)

    def notify(self, head: int) -> None:
        """The journal holds events up to `head` (called after each group commit).

        At most one wake-up is in the pipe at a time (the child reads the head
        from the journal itself), so this never blocks the journal's writer.
        """
        with self._lock:
            self._head = max(self._head, head)
            if self._wakeup_sent:
                return
            self._wakeup_sent = True
        self._send(("head", head))

    def sync(self) -> Future[None]:
        """Resolves once everything the journal held at this call is indexed."""
        future: Future[None] = Future()
        with self._lock:
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
        return self._supervisor is not None and self._supervisor.is_alive()

    def close(self) -> None:
        """Let the child index what the journal holds, then stop it."""
        with self._send_lock:
            self._closing = True
        self._send(("close",))
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.join(timeout=CLOSE_SECONDS)
            if supervisor.is_alive():  # its store is stuck; killing it loses nothing indexed
                log.error("the recorder did not stop within %s s; killing it", CLOSE_SECONDS)
                with self._send_lock:
                    process = self._process
                if process is not None:
                    process.kill()
                supervisor.join(timeout=CLOSE_SECONDS)
        self._release_waiters(lambda _target: True)

    def _send(self, message: tuple[Any, ...]) -> None:
        # Never under `_lock`: the supervisor must always be free to drain the
        # child's messages.
        with self._send_lock:
            if self._pipe is not None and not self._pipe.closed:
                try:
                    self._pipe.send(message)
                except OSError:
                    log.warning("the recorder process is gone")

    def _spawn(self) -> bool:
        """Start a child unless closing; False if closing."""
        context = multiprocessing.get_context("spawn")
        with self._send_lock:
            if self._closing:
                return False
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=run_child, args=(child_end, *self._args, os.getpid()), daemon=True
            )
            process.start()
            child_end.close()
            self._pipe, self._process = parent_end, process
        with self._lock:
            self._wakeup_sent = False
        return True

    def _supervise(self) -> None:
        quick_deaths = 0
        while self._spawn():
            reported = self._listen()
            process = self._process
            assert process is not None
            if self._closing:
                process.join(timeout=CLOSE_SECONDS)
                break
            quick_deaths = 0 if reported else quick_deaths + 1
            log.error("the recorder process exited (code %s); restarting", process.exitcode)
            if quick_deaths >= MAX_QUICK_DEATHS:
                log.error("the recorder keeps dying before it starts; giving up")
                break
            time.sleep(RESTART_SECONDS)
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _listen(self) -> bool:
        """Relay the child's reports until it goes away; whether it reported."""
        assert self._pipe is not None
        reported = False
        while True:
            try:
                _kind, at, events, seconds, head = self._pipe.recv()
            except (EOFError, OSError):
                return reported
            reported = True
            if events and self._on_step is not None:
                self._on_step(events, seconds)
            if events >= RATE_MIN_EVENTS and seconds > 0:
                rate = events / seconds
                self._rate = (
                    rate if not self._rate else self._rate + RATE_WEIGHT * (rate - self._rate)
                )
            with self._lock:
                self._position = at
                self._head = max(self._head, head)
                # Commits that came while the child was busy may be newer than
                # what it read: wake it once more rather than let it sleep.
                self._wakeup_sent = self._head > at
            if self._head > at:
                self._send(("head", self._head))
            self._release_waiters(functools.partial(operator.ge, at))

    def _release_waiters(self, ready: Callable[[int], bool]) -> None:
        with self._lock:
            done = [f for target, f in self._waiters if ready(target)]
            self._waiters = [(t, f) for t, f in self._waiters if not ready(t)]
        for future in done:
            resolve(future, None)


def run_child(
    pipe: Connection, journal_path: str, store_path: str, batch_events: int, parent: int
) -> None:
    """The child's loop: index while behind the journal head, else wait for news."""
    die_with_parent(parent)
    os.nice(RECORDER_NICENESS)  # indexing yields the CPU to ingest; it catches up after
    logging.basicConfig(level=logging.INFO, format="recorder: %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    store = open_database(Path(store_path), "store", synchronous="NORMAL")
    # Index pages are written at random places: a larger cache and rarer
    # checkpoints let many steps dirty the same page before it is written.
    store.execute(f"PRAGMA cache_size = -{STORE_CACHE_KIB}")
    store.execute(f"PRAGMA wal_autocheckpoint = {STORE_CHECKPOINT_PAGES}")
    journal = connect(Path(journal_path))
    freeze_startup_objects()
    at = position(store)
    head = _journal_head(journal)
    closing = False
    reindexing = True  # until reindex_text says none is pending
    if not _tell(pipe, at, 0, 0.0, head):
        return
    while True:
        if at < head:
            try:
                events, at, seconds = step(journal, store, at, batch_events)
            except Exception as exc:  # the journal is intact; try again shortly
                log.error("indexing after seq %d failed (retrying): %s", at, exc)
                # Told to close (or orphaned) while indexing fails (a full disk):
                # stop now; what was indexed is committed, a new start resumes.
                if closing or _closed_within(pipe, RETRY_SECONDS):
                    return
                at = position(store)
                continue
            if not _tell(pipe, at, events, seconds, head):
                return
        elif closing or os.getppid() != parent:
            return
        elif reindexing:  # new events first; a pending text reindex when caught up
            try:
                reindexing = reindex_text(journal, store, batch_events)
            except Exception:  # the journal is intact; try again shortly
                log.exception("indexing the text of older events again failed")
                time.sleep(1.0)
        # Wait for news only when caught up; either way read what has come.
        timeout = 0.0 if at < head or reindexing else POLL_SECONDS
        while pipe.poll(timeout):
            try:
                message = pipe.recv()
            except (EOFError, OSError):  # the parent is gone; what was indexed is committed
                return
            closing = closing or message[0] == "close"
            timeout = 0.0
        head = max(head, _journal_head(journal))


def _closed_within(pipe: Connection, seconds: float) -> bool:
    """Wait up to `seconds` for news; True if it was "close" or the parent left."""
    deadline = time.monotonic() + seconds
    while pipe.poll(max(0.0, deadline - time.monotonic())):
        try:
            if pipe.recv()[0] == "close":
                return True
        except (EOFError, OSError):
            return True
    return False


def _tell(pipe: Connection, at: int, events: int, seconds: float, head: int) -> bool:
    """Report progress; False when the parent is gone."""
    try:
        pipe.send(("at", at, events, seconds, head))
    except OSError:
        return False
    return True


def _journal_head(journal: DbConnection) -> int:
    return int(scalar(journal, query("journal", "last_seq")))

"""Running pollers inside `auditlake serve`: one thread per source.

Lifecycle: `start()` after the journal started; `close()` before the journal
closes. A poll in progress is not interrupted: it ends (or fails) on its own,
within its requests' timeouts and retries. After a successful poll a runner
sleeps `poll_interval`; after a failed one it retries sooner, with capped
exponential backoff and jitter, so a flapping vendor API is neither hammered
nor left alone for long.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from auditlake.pollers.poller import Poller

log = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 1.0


class PollerRunner:
    """Polls one source on its schedule until stopped."""

    def __init__(
        self,
        poller: Poller,
        *,
        max_backoff: float = 60.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.poller = poller
        self._max_backoff = max_backoff
        self._jitter = jitter
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # polls failed in a row

    def start(self) -> None:
        """Poll now, then on the schedule, in a daemon thread."""
        name = f"poller-{self.poller.name}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the runner to stop after its current poll."""
        self._stopping.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the current poll; wait (at most `timeout`) for the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def running(self) -> bool:
        """Whether the thread is still alive."""
        return self._thread is not None and self._thread.is_alive()

    def next_wait(self, failed: bool) -> float:
        """Seconds until the next poll."""
        interval = self.poller.schedule.poll_interval
        if not failed:
            return interval
        backoff = min(self._max_backoff, FIRST_RETRY_SECONDS * 2.0 ** (self.failures - 1))
        return min(interval, backoff * (0.5 + self._jitter() / 2))

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poller.poll_once()
                self.failures = 0
            except Exception as exc:  # a poll failure never ends the runner
                self.failures += 1
                log.warning("%s: poll failed (%s): %s", self.poller.name, type(exc).__name__, exc)
            self._stopping.wait(self.next_wait(self.failures > 0))


class PollerGroup:
    """The runners of a service, and what they hold open (clients, state)."""

    def __init__(self, runners: list[PollerRunner], closers: list[Callable[[], None]]) -> None:
        self.runners = runners
        self._closers = closers

    def start(self) -> None:
        """Start every runner."""
        for runner in self.runners:
            runner.start()

    def close(self, timeout: float = 30.0) -> None:
        """Tell every runner to stop, wait for them together, then release what
        they used (unless one is still inside a request: then it is left to
        the process's exit rather than closed under it)."""
        for runner in self.runners:
            runner.signal_stop()
        for runner in self.runners:
            runner.close(timeout)
        if all(not runner.running() for runner in self.runners):
            for close in self._closers:
                close()

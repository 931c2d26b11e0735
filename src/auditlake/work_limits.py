"""What one kind of work and one client may hold at once.

Blocking calls run on worker threads. Each kind of work gets its own bounded
share of them (an anyio `CapacityLimiter`), so slow searches can fill their
own share but never make a key check or a readiness probe wait for a
thread. Apart from that, one API key may run only so many searches and
exports at a time: one more is refused with a 429 at once rather than queued,
so a single client cannot hold every read thread or pile up waiting work.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, Literal, TypeVar

import anyio
import anyio.to_thread

from auditlake.errors import TooManyRequests

T = TypeVar("T")
Kind = Literal["search", "export"]
RETRY_AFTER_SECONDS = 1
_PLURAL: dict[Kind, str] = {"search": "searches", "export": "exports"}


class WorkPools:
    """Bounded worker-thread shares: reads and key checks (readiness and
    metrics probes run as `SharedCall`s, one thread each at most)."""

    def __init__(self, read_threads: int, key_check_threads: int) -> None:
        self._reads = anyio.CapacityLimiter(read_threads)
        self._keys = anyio.CapacityLimiter(key_check_threads)

    async def read(self, call: Callable[..., T], *args: object) -> T:
        """Run a store read (search, get, export page) on the reads' threads."""
        return await anyio.to_thread.run_sync(call, *args, limiter=self._reads)

    async def check_key(self, call: Callable[..., T], *args: object) -> T:
        """Run an API key lookup on the key checks' threads."""
        return await anyio.to_thread.run_sync(call, *args, limiter=self._keys)


class SharedCall(Generic[T]):
    """One blocking call (a readiness ping) shared by every caller while it
    runs, on a thread of its own.

    A caller that comes while the call is pending waits for that same call
    instead of starting another, so a call that hangs holds one thread, not
    one per caller (a timed-out thread cannot be stopped, only left behind).
    """

    def __init__(self, call: Callable[[], T], timeout: float, name: str) -> None:
        self._call = call
        self._timeout = timeout
        self._name = name
        self._lock = threading.Lock()
        self._future: Future[T] | None = None
        self._started = 0.0  # time.monotonic() when the pending call started

    async def result(self) -> T:
        """The call's result (or its exception); TimeoutError once `timeout`
        seconds have passed since the shared call started (at once if they
        already have). The next caller after the call ends starts a new one."""
        with self._lock:
            if self._future is None or self._future.done():
                self._future, self._started = Future(), time.monotonic()
                thread = threading.Thread(target=self._run, args=(self._future,), name=self._name)
                thread.daemon = True
                thread.start()
            future, left = self._future, self._started + self._timeout - time.monotonic()
        if left <= 0:
            raise TimeoutError
        # shield: a caller's timeout must not cancel the call others share.
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), left)

    def _run(self, future: Future[T]) -> None:
        future.set_running_or_notify_cancel()  # running: no caller can cancel it
        try:
            future.set_result(self._call())
        except BaseException as exc:  # handed to the callers, who report it
            future.set_exception(exc)


class Slot:
    """One held search or export of one key; `release()` is idempotent."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        release, self._release = self._release, None
        if release is not None:
            release()


class ClientSlots:
    """Counts the searches and exports each API key runs right now."""

    def __init__(self, max_searches: int, max_exports: int) -> None:
        self._limits: dict[Kind, int] = {"search": max_searches, "export": max_exports}
        self._held: dict[tuple[str, Kind], int] = {}
        self._lock = threading.Lock()

    def hold(self, key_id: str, kind: Kind) -> Slot:
        """A slot of `kind` for `key_id`, or TooManyRequests (429) when the key
        already holds its limit."""
        name = (key_id, kind)
        with self._lock:
            held = self._held.get(name, 0)
            if held >= self._limits[kind]:
                raise TooManyRequests(
                    f"this key already runs {held} {_PLURAL[kind]} at once, its limit; "
                    "retry when one has finished",
                    {"retry_after": RETRY_AFTER_SECONDS, "limit": self._limits[kind]},
                )
            self._held[name] = held + 1
        return Slot(lambda: self._give_back(name))

    def held(self, key_id: str, kind: Kind) -> int:
        """How many slots of `kind` the key holds now."""
        with self._lock:
            return self._held.get((key_id, kind), 0)

    def _give_back(self, name: tuple[str, Kind]) -> None:
        with self._lock:
            left = self._held[name] - 1
            if left:
                self._held[name] = left
            else:
                del self._held[name]

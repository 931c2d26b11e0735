"""What one kind of work and one client may hold at once.

Blocking calls run on worker threads. Each kind of work gets its own bounded
share of them (an anyio `CapacityLimiter`), so slow searches can fill their
own share but never make a key check or a readiness probe wait for a
thread. Apart from that, one API key may run only so many searches and
exports at a time: one more is refused with a 429 at once rather than queued,
so a single client cannot hold every read thread or pile up waiting work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from auditlake.errors import TooManyRequests

T = TypeVar("T")
Kind = Literal["search", "export"]
RETRY_AFTER_SECONDS = 1
OPS_THREADS = 2
_PLURAL: dict[Kind, str] = {"search": "searches", "export": "exports"}


class WorkPools:
    """Bounded worker-thread shares: reads, key checks, operations probes."""

    def __init__(self, read_threads: int, key_check_threads: int) -> None:
        self._reads = anyio.CapacityLimiter(read_threads)
        self._keys = anyio.CapacityLimiter(key_check_threads)
        self._ops = anyio.CapacityLimiter(OPS_THREADS)

    async def read(self, call: Callable[..., T], *args: object) -> T:
        """Run a store read (search, get, export page) on the reads' threads."""
        return await anyio.to_thread.run_sync(call, *args, limiter=self._reads)

    async def check_key(self, call: Callable[..., T], *args: object) -> T:
        """Run an API key lookup on the key checks' threads."""
        return await anyio.to_thread.run_sync(call, *args, limiter=self._keys)

    async def probe(self, call: Callable[..., T], *args: object) -> T:
        """Run a readiness or metrics probe on threads of their own; a caller
        that gives up waiting (a timeout) is not held until the call returns."""
        return await anyio.to_thread.run_sync(
            call, *args, limiter=self._ops, abandon_on_cancel=True
        )


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

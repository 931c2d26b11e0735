"""Process-wide tuning of the long-running processes: the garbage collector
and the C allocator (glibc).

`freeze_startup_objects()` keeps what exists at start out of later
collections. A large answer briefly holds a few MB of event bodies: Python
frees them at once, but glibc keeps freed heap memory in its arenas (one per
thread that allocated) for reuse, and raises its mmap threshold after each
large free, so without help the process keeps the peak of its largest
answers for ever. `tune_allocator()` fixes the threshold and the number of
arenas at start; `release_freed_memory()` asks glibc to return what is free,
at most once per `TRIM_EVERY_SECONDS`, always on a timer thread (a trim takes
about a ms, which the event loop must not spend). Elsewhere than glibc the
allocator functions do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
import time
from collections.abc import Callable

# From <malloc.h>.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, kept fixed
ARENAS = 4
TRIM_EVERY_SECONDS = 1.0


def freeze_startup_objects() -> None:
    """Exclude every object alive now (modules, classes, the app) from later
    collections, so a full collection scans only what requests created
    instead of the whole program each time."""
    gc.collect()
    gc.freeze()


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def tune_allocator() -> None:
    """Keep blocks of MMAP_THRESHOLD_BYTES and more out of the heap (they go
    back to the system when freed) and bound the arenas to ARENAS."""
    if _LIBC is None:
        return
    _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    _LIBC.mallopt(M_ARENA_MAX, ARENAS)


class _Trimmer:
    """Runs `trim` on a timer thread, at most once per `every` seconds; calls
    while one is scheduled join it."""

    def __init__(
        self,
        every: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        self.every = every
        self._clock = clock
        self._schedule = schedule or _on_timer_thread
        self._lock = threading.Lock()
        self._last = -every  # clock() of the last trim
        self._pending = False

    def request(self) -> None:
        """Schedule a trim: as soon as `every` seconds have passed since the
        last one (at once, on the timer thread, if they have)."""
        if _LIBC is None:
            return
        with self._lock:
            if self._pending:
                return
            self._pending = True
            wait = max(0.0, self._last + self.every - self._clock())
        self._schedule(wait, self._trim)

    def _trim(self) -> None:
        with self._lock:
            self._pending = False
            self._last = self._clock()
        if _LIBC is not None:
            _LIBC.malloc_trim(0)


def _on_timer_thread(wait: float, call: Callable[[], None]) -> None:
    timer = threading.Timer(wait, call)
    timer.daemon = True
    timer.start()


_TRIMMER = _Trimmer(TRIM_EVERY_SECONDS)


def release_freed_memory() -> None:
    """Return free heap memory to the system soon, on a timer thread (so many
    answers ending together cost one trim); returns at once."""
    _TRIMMER.request()

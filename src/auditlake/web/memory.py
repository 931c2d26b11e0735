"""Giving freed memory back to the system (glibc).

A large answer briefly holds a few MB of event bodies. Python frees them at
once, but glibc keeps freed heap memory in its arenas (one per thread that
allocated) for reuse, and raises its mmap threshold after each large free,
so without help the process keeps the peak of its largest answers for ever.
`tune_allocator()` fixes the threshold and the number of arenas at start;
`release_freed_memory()` asks glibc to return what is free, at most once per
`TRIM_EVERY_SECONDS`. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
import time

log = logging.getLogger(__name__)

# From <malloc.h>.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, kept fixed
ARENAS = 4
TRIM_EVERY_SECONDS = 1.0

_state: dict[str, float | bool] = {"last_trim": 0.0, "pending": False}
_lock = threading.Lock()


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


def release_freed_memory() -> None:
    """Return free heap memory to the system: now, or once TRIM_EVERY_SECONDS
    have passed since the last time (so many answers ending together cost
    one trim of about a ms)."""
    if _LIBC is None:
        return
    with _lock:
        wait = _state["last_trim"] + TRIM_EVERY_SECONDS - time.monotonic()
        if _state["pending"]:
            return
        _state["pending"] = True
    if wait > 0:
        timer = threading.Timer(wait, _trim)
        timer.daemon = True
        timer.start()
    else:
        _trim()


def _trim() -> None:
    assert _LIBC is not None
    with _lock:
        _state["pending"] = False
        _state["last_trim"] = time.monotonic()
    _LIBC.malloc_trim(0)

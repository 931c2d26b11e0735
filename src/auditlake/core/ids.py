"""Identifiers: time-ordered UUIDv7 for service-generated ids, and stable ids
derived from an idempotency key."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Ids must be unique, not secret: a fast generator seeded from the OS is enough
# (the OS source costs up to a millisecond per call on some virtual machines).
_random = random.Random(os.urandom(32))


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) string; monotonic within one process.

    The 12-bit `rand_a` field holds a counter seeded randomly each millisecond,
    so ids made in the same millisecond still sort in creation order. Ids are
    unique, not unguessable: never use them as secrets.
    """
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            _counter = _random.getrandbits(11)
        else:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                ms = _last_ms
                _counter = 0
        counter = _counter
        low = (0b10 << 62) | _random.getrandbits(62)
    text = f"{ms & 0xFFFF_FFFF_FFFF:012x}7{counter:03x}{low:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def idempotent_id(key: str, index: int = 0) -> str:
    """A stable UUID (version 8, RFC 9562) for the `index`-th event sent with
    the `Idempotency-Key` header `key`: re-sending yields the same id."""
    digest = bytearray(hashlib.sha256(f"{index}\x00{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))

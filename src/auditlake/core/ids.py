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
    return uuid7_many(1, now_ms)[0]


def uuid7_many(count: int, now_ms: int | None = None) -> list[str]:
    """`count` UUIDv7 strings in creation order, as `uuid7()` would make them
    one by one (a batch takes the lock and reads the clock once)."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    stamps = []
    with _lock:
        for _ in range(count):
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
            # unix_ts_ms (48 bits), version 7, rand_a = the counter (12 bits)
            stamps.append(((ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (_counter << 64))
        lows = [(0b10 << 62) | _random.getrandbits(62) for _ in range(count)]
    return [_uuid_text(stamp | low) for stamp, low in zip(stamps, lows, strict=True)]


def _uuid_text(value: int) -> str:
    h = value.to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def idempotent_id(key: str, index: int = 0) -> str:
    """A stable UUID (version 8, RFC 9562) for the `index`-th event sent with
    the `Idempotency-Key` header `key`: re-sending yields the same id."""
    return _hashed_uuid(f"{index}\x00{key}")


def derived_id(namespace: str, *parts: str) -> str:
    """A stable UUID (version 8) for an event a producer names by `parts`
    (e.g. a CloudEvent's source and id): redelivery gives the same id, and
    equal ids of different producers never collide."""
    return _hashed_uuid("\x00".join((namespace, *parts)))


def _hashed_uuid(text: str) -> str:
    digest = bytearray(hashlib.sha256(text.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))

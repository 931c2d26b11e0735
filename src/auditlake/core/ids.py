"""Identifiers: time-ordered UUIDv7 for service-generated ids, and stable ids
derived from an idempotency key."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_entropy = b""
_ENTROPY_CHUNK = 8 * 512  # one getrandom() call per 512 ids


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) string; monotonic within one process.

    The 12-bit `rand_a` field holds a counter seeded randomly each millisecond,
    so ids made in the same millisecond still sort in creation order; `rand_b`
    is 62 bits from the OS's cryptographic random source.
    """
    global _last_ms, _counter, _entropy
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        if len(_entropy) < 10:
            _entropy = os.urandom(_ENTROPY_CHUNK)
        seed, random_bits, _entropy = _entropy[:2], _entropy[2:10], _entropy[10:]
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(seed, "big") & 0x7FF
        else:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                ms = _last_ms
                _counter = 0
        counter = _counter
    low = (0b10 << 62) | (int.from_bytes(random_bits, "big") & 0x3FFF_FFFF_FFFF_FFFF)
    text = f"{ms & 0xFFFF_FFFF_FFFF:012x}7{counter:03x}{low:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def idempotent_id(key: str, index: int = 0) -> str:
    """A stable UUID (version 8, RFC 9562) for the `index`-th event sent with
    the `Idempotency-Key` header `key`: re-sending yields the same id."""
    digest = bytearray(hashlib.sha256(f"{index}\x00{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))

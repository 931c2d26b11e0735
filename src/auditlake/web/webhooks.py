"""Verifying Standard Webhooks signatures (https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from auditlake.errors import ConfigError, Forbidden, Unauthenticated
from auditlake.source_settings import WebhookAuth

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class StandardWebhookVerifier:
    """Checks a delivery's HMAC signature, timestamp and id (no replays).

    Pure and thread-safe; accepted ids are remembered in memory only.
    """

    def __init__(
        self,
        config: WebhookAuth,
        *,
        clock: Callable[[], float] = time.time,
        remember: int = 100_000,
    ) -> None:
        self._key = decode_secret(config.secret)
        self._tolerance = config.tolerance_seconds
        self._clock = clock
        self._remember = max(1, remember)
        self._lock = threading.Lock()
        # webhook-id -> when it may be forgotten, in the order accepted.
        self._seen: OrderedDict[str, float] = OrderedDict()

    def verify(self, headers: Mapping[str, str], body: bytes, as_sent: bytes | None = None) -> str:
        """The delivery's `webhook-id`; 401 without the headers, 403 if it does not check out.

        `as_sent` is the body as sent when a Content-Encoding made it differ from
        `body` (the decoded payload): a signature over either is accepted, as
        senders sign before or after compressing."""
        lowered = {name.lower(): value for name, value in headers.items()}
        values = [lowered.get(name, "").strip() for name in HEADERS]
        for name, value in zip(HEADERS, values, strict=True):
            if not value:
                raise Unauthenticated(f"the '{name}' header is required")
        msg_id, stamp, signatures = values
        now = self._clock()
        sent = self._check_timestamp(stamp, now)
        payloads = [body] if as_sent is None else [body, as_sent]
        if not any(_any_matches(self._sign(msg_id, stamp, p), signatures) for p in payloads):
            raise Forbidden("the webhook signature is invalid")
        self._accept_once(msg_id, max(sent, now) + self._tolerance, now)
        return msg_id

    def _sign(self, msg_id: str, stamp: str, payload: bytes) -> bytes:
        signed = f"{msg_id}.{stamp}.".encode() + payload
        return hmac.new(self._key, signed, hashlib.sha256).digest()

    def forget(self, msg_id: str) -> None:
        """Accept `msg_id` again: its delivery was verified but not kept (an
        invalid event, an overloaded journal), so the sender's retry is no replay."""
        with self._lock:
            self._seen.pop(msg_id, None)

    def _check_timestamp(self, stamp: str, now: float) -> int:
        if not (stamp.isascii() and stamp.isdigit()):
            raise Forbidden("the webhook timestamp is not an integer")
        sent = int(stamp)
        if sent < now - self._tolerance:
            raise Forbidden("the webhook timestamp is too old")
        if sent > now + self._tolerance:
            raise Forbidden("the webhook timestamp is in the future")
        return sent

    def _accept_once(self, msg_id: str, forget_at: float, now: float) -> None:
        # A replay's timestamp is rejected once `forget_at` has passed, so only
        # ids younger than that need remembering.
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now:
                self._seen.popitem(last=False)
            if msg_id in self._seen:
                raise Forbidden("this webhook-id was already accepted (replay)")
            while len(self._seen) >= self._remember:
                self._seen.popitem(last=False)
            self._seen[msg_id] = forget_at


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional)."""
    encoded = secret.strip().removeprefix("whsec_")
    try:
        # Some senders leave the padding off.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ConfigError("the webhook secret is not base64 (whsec_<base64>)") from None
    if not key:
        raise ConfigError("no webhook secret is set")
    return key


def _any_matches(expected: bytes, signatures: str) -> bool:
    """Whether one of the space-separated `v1,<base64>` entries is `expected`."""
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if version == "v1" and hmac.compare_digest(expected, candidate):
            return True
    return False

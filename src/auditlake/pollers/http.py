"""GET JSON from a vendor API: bearer auth, retries with backoff, and errors
that say whether a later poll can succeed.

The token goes into the `Authorization` header and nowhere else: messages,
details and log lines name the URL path and the status or error kind only,
and vendor-supplied text has the token blanked out should it echo it.
"""

from __future__ import annotations

import logging
import math
import random as _random
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from auditlake.core.strict_json import DuplicateKey, duplicate_keys
from auditlake.pollers.base import VendorError

log = logging.getLogger(__name__)

BASE_BACKOFF = 0.5
# Rate limits and maintenance windows say when to come back; other 5xx do not.
RETRY_AFTER_STATUSES = frozenset({429, 503})
REDACTED = "[redacted]"


class VendorUnavailable(VendorError):
    """The vendor kept failing in a way that may pass (timeouts, 429, 5xx, a
    body that is not JSON); the poll stops and a later one tries again."""

    code = "vendor_unavailable"
    transient = True


class _Retryable(Exception):
    """One failed attempt that another attempt may fix (internal)."""

    def __init__(self, reason: str, details: dict[str, Any], after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details
        self.after = after


class JsonGetter:
    """GETs JSON with `Authorization: Bearer <token>`, retrying what may pass.

    `requests` counts HTTP attempts and `retries` the attempts after a failed
    one (for inspection). `duplicate_keys` lists every key that an object of
    the last body named twice (the decoded body keeps the last value): the
    caller decides what such an ambiguous body is worth. Blocking; meant for
    one poller thread.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        token: str,
        timeout: float,
        max_attempts: int,
        max_backoff: float,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._client = client
        self._token = token
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._max_backoff = max(0.0, max_backoff)
        self._sleep = sleep
        self._random = random
        self.requests = 0
        self.retries = 0
        self.duplicate_keys: list[DuplicateKey] = []

    def get(self, url: str, params: Mapping[str, str | int]) -> Any:
        """The decoded JSON body of a 2xx answer to `GET url?params`.

        Raises `VendorUnavailable` (transient) after `max_attempts` failed
        attempts or for a 2xx that is not JSON, and a permanent `VendorError`
        for any other status (with the vendor's error messages)."""
        path = _path(url)
        failure = _Retryable("no attempt", {})
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._once(url, params, path)
            except _Retryable as exc:
                failure = exc
            log.info(
                "GET %s: %s (attempt %d of %d)", path, failure.reason, attempt, self._max_attempts
            )
            if attempt < self._max_attempts:
                self.retries += 1
                self._sleep(self._delay(attempt - 1, failure.after))
        message = f"GET {path} failed after {self._max_attempts} attempts: {failure.reason}"
        details = {"path": path, "attempts": self._max_attempts, **failure.details}
        raise VendorUnavailable(message, details)

    def redact(self, text: str) -> str:
        """`text` with the token blanked out (for text the vendor sent back)."""
        return text.replace(self._token, REDACTED) if self._token else text

    def _once(self, url: str, params: Mapping[str, str | int], path: str) -> Any:
        self.requests += 1
        try:
            response = self._client.get(
                url, params=params, headers=self._headers, timeout=self._timeout
            )
        except httpx.UnsupportedProtocol:
            raise VendorError(f"GET {path}: the URL is not http(s)", {"path": path}) from None
        except httpx.TimeoutException as exc:
            kind = type(exc).__name__
            raise _Retryable(f"timeout ({kind})", {"error": kind}) from None
        except httpx.RequestError as exc:  # connect, read, protocol errors
            kind = type(exc).__name__
            raise _Retryable(kind, {"error": kind}) from None
        status = response.status_code
        if 200 <= status < 300:
            body = _json(response, path)
            self.duplicate_keys = _repeated_keys(response, body, path)
            return body
        messages = [self.redact(m) for m in vendor_messages(_json_or_none(response))]
        details: dict[str, Any] = {"status": status, "errors": messages}
        if status == 429 or status >= 500:
            after = _retry_after(response) if status in RETRY_AFTER_STATUSES else None
            raise _Retryable(f"HTTP {status}", details, after)
        text = f"GET {path}: HTTP {status}" + (f": {'; '.join(messages)}" if messages else "")
        raise VendorError(text, {"path": path, **details})

    def _delay(self, failed_before: int, after: float | None) -> float:
        """Seconds to wait after `failed_before + 1` failed attempts: the
        server's Retry-After, else capped exponential backoff, full jitter."""
        if after is not None:
            return min(self._max_backoff, after)
        ceiling = min(self._max_backoff, BASE_BACKOFF * 2.0 ** min(failed_before, 64))
        return ceiling * self._random()


def vendor_messages(body: Any) -> list[str]:
    """Cloudflare's `errors: [{code, message}]` as `code: message` lines."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    lines = []
    for error in errors:
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
            lines.append(f"{code}: {message}" if code is not None else str(message))
        elif isinstance(error, str):
            lines.append(error)
    return lines


def _path(url: str) -> str:
    try:
        return httpx.URL(url).path
    except httpx.InvalidURL:
        raise VendorError("the vendor URL is invalid") from None


def _json(response: httpx.Response, path: str) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON, or not UTF-8
        status = response.status_code
        details = {"path": path, "status": status}
        raise VendorUnavailable(
            f"GET {path}: HTTP {status}, a body that is not JSON", details
        ) from None


def _repeated_keys(response: httpx.Response, body: Any, path: str) -> list[DuplicateKey]:
    """Every key given twice in one object of the body (all of them: a page's
    caller sorts them by item)."""
    try:
        return duplicate_keys(response.content, body, limit=sys.maxsize)
    except (RecursionError, ValueError):
        details = {"path": path, "status": response.status_code}
        raise VendorUnavailable(f"GET {path}: a body nested too deeply", details) from None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None

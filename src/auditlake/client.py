"""A synchronous Python client for the auditlake HTTP API.

    with auditlake.Client("http://127.0.0.1:8080", api_key) as client:
        client.publish({"action": "user.signed_in", "actor": {"id": "u_1"}})
        for event in client.search(action="user.*", actor_id="u_1"):
            print(event.id, event.action)

Every failure raises `ApiError`, which carries the server's error body.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from auditlake.core.event import Event, EventInput
from auditlake.core.query import FILTER_NAMES
from auditlake.errors import AuditlakeError
from auditlake.journal.base import AppendResult, BatchResult

T = TypeVar("T")
EventLike = EventInput | Mapping[str, Any]
# since/until: a datetime (naive means UTC), a date (midnight UTC), a timedelta
# (that long before now, in whole seconds), or text the server reads (RFC 3339,
# 2026-11-01, 15m, 24h, 7d).
FilterValue = str | datetime | date | timedelta | None
TRANSIENT_STATUSES = frozenset({0, 429, 502, 503, 504})
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024  # half the server's default body limit
MAX_IDEMPOTENCY_KEY = 255
MAX_RETRY_WAIT = 30.0
# The keyword filters `search_page`, `search` and `export` take: the API's.
FILTERS = (*FILTER_NAMES, "order")


# The wire types are the server's own: one result per event, and per batch.
PublishResult = AppendResult


class SearchPage(msgspec.Struct, frozen=True):
    """One page of a search; `next_cursor` is None on the last page."""

    data: list[Event]
    next_cursor: str | None = None


class ApiError(AuditlakeError):
    """An error answer from the server, or none at all (`status` 0, `code` "connection").

    `code`, `message` and `details` come from the server's `{"error": {...}}`
    body; `body` is that parsed body (or the raw text); `retry_after` is in
    seconds. `partial` holds what `publish_many` stored before failing.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, details)
        self.status = status
        self.code = code
        self.body = body
        self.retry_after = retry_after
        self.transient = status in TRANSIENT_STATUSES
        self.partial: BatchResult | None = None

    def __str__(self) -> str:
        text = f"{self.status} {self.code}: {self.message}"
        if self.details:
            text += f" {json.dumps(self.details, default=str)[:1000]}"
        return text

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error an HTTP error answer stands for."""
        status, retry_after = response.status_code, _retry_after(response.headers)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            message = str(error.get("message") or response.reason_phrase)
            return cls(status, error["code"], message, error.get("details"), body, retry_after)
        message = response.reason_phrase or str(body)[:200] or "HTTP error"
        return cls(status, f"http_{status}", message, None, body, retry_after)


class Client:
    """A keep-alive connection to one auditlake server with one API key.

    `retries` (default 0) retries transient failures with a bounded wait that
    honours Retry-After. A publish whose answer was lost is retried only when
    it cannot store twice: its events carry ids or it has an idempotency key.
    """

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0, retries: int = 0) -> None:
        self.url = url.rstrip("/")
        self.retries = max(0, retries)
        headers = {"authorization": f"Bearer {api_key.strip()}", "user-agent": "auditlake"}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    def publish(self, event: EventLike, idempotency_key: str | None = None) -> PublishResult:
        """Store one event (a dict or an `EventInput`).

        With `idempotency_key` and no event id, the server derives a stable id
        from the key, so sending again reports `duplicate` instead of storing twice.
        """
        safe = bool(idempotency_key) or _has_id(event)
        response = self._request(
            "POST", "/v1/events", safe, content=_encode(event), headers=_headers(idempotency_key)
        )
        return _decode(response, PublishResult)

    def publish_many(
        self,
        events: Iterable[EventLike],
        idempotency_key: str | None = None,
        batch_size: int = 1000,
    ) -> BatchResult:
        """Store many events, `batch_size` (<= 1000) per request, and merge the answers.

        Atomicity is per request: each request's events are all stored or none,
        but if a later request fails the earlier ones stay stored (see
        `ApiError.partial`). Sending the list again is safe when the events
        carry ids, or with the same `idempotency_key` and `batch_size` (each
        later request gets the key suffixed with the index of its first event).
        """
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        items = list(events)
        merged = BatchResult([], 0, 0)
        for start, chunk in _chunks([_encode(e) for e in items], batch_size):
            key = _chunk_key(idempotency_key, start)
            safe = bool(key) or all(_has_id(e) for e in items[start : start + len(chunk)])
            body = b'{"events":[%s]}' % b",".join(chunk)
            try:
                response = self._request(
                    "POST", "/v1/events/batch", safe, content=body, headers=_headers(key)
                )
            except ApiError as error:
                error.partial = merged if merged.results else None
                raise
            answer = _decode(response, BatchResult)
            merged.results.extend(answer.results)
            merged.created += answer.created
            merged.duplicates += answer.duplicates
        return merged

    def get(self, event_id: str, tenant: str | None = None) -> Event:
        """The stored event with this id; ApiError 404 `not_found` if there is none."""
        if not event_id:
            raise ValueError("event_id must not be empty")
        path = f"/v1/events/{id_segment(event_id)}"
        return _decode(self._request("GET", path, params=_params({}, tenant=tenant)), Event)

    def search_page(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        tenant: str | None = None,
        **filters: FilterValue,
    ) -> SearchPage:
        """One page of events matching `filters`: action (`user.*` is a prefix),
        actor_id, actor_type, target_id, target_type, outcome, source, since,
        until, q and order.

        `since` (inclusive) and `until` (exclusive) take a datetime (naive
        means UTC), a date (midnight UTC), a timedelta (that long before now,
        whole seconds), or text: RFC 3339, a date (`2026-11-01`) or a duration
        (`15m`, `24h`, `7d`; units s, m, h, d, w). Other text is ApiError 400.
        A duration is counted back from the first page's time, so every page
        of one search covers the same window.

        Pass the previous page's `next_cursor` with the same filters to go on.
        Another keyword (a typo, `format`) is a TypeError, never sent.
        """
        _check_filters("search_page", filters)
        params = _params(filters, tenant=tenant, limit=limit, cursor=cursor)
        return _decode(self._request("GET", "/v1/events", params=params), SearchPage)

    def search(
        self, *, page_size: int = 100, tenant: str | None = None, **filters: FilterValue
    ) -> Iterator[Event]:
        """Every event matching `filters` (see `search_page`), fetched page by
        page as the iterator is read; an unknown filter is a TypeError at the call."""
        _check_filters("search", filters)
        return self._pages(page_size, tenant, filters)

    def _pages(
        self, page_size: int, tenant: str | None, filters: dict[str, FilterValue]
    ) -> Iterator[Event]:
        cursor: str | None = None
        while True:
            page = self.search_page(cursor=cursor, limit=page_size, tenant=tenant, **filters)
            yield from page.data
            if page.next_cursor is None or not page.data:
                return
            cursor = page.next_cursor

    def export(
        self,
        format: str = "ndjson",  # the API's and the CLI's name for it
        *,
        tenant: str | None = None,
        **filters: FilterValue,
    ) -> Iterator[bytes]:
        """Every matching event as `format` (`ndjson` or `csv`) bytes, streamed
        in chunks; `filters` as `search_page` takes them (and `order`).

        An unknown filter name is a TypeError at the call; the request starts
        at the first `next()`; close the iterator to stop early.
        """
        _check_filters("export", filters)
        return self._export(_params(filters, tenant=tenant, format=format))

    def _export(self, params: dict[str, str]) -> Iterator[bytes]:
        response = self._request("GET", "/v1/export", params=params, stream=True)
        try:
            yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise _transport_error(self.url, exc) from exc
        finally:
            response.close()

    def _request(
        self, method: str, path: str, safe: bool = True, stream: bool = False, **kw: Any
    ) -> httpx.Response:
        """Send, retrying transient failures; `safe`: sending twice cannot store twice."""
        request = self._http.build_request(method, path, **kw)
        attempt = 0
        while True:
            try:
                return self._send(request, stream)
            except ApiError as error:
                attempt += 1
                if attempt > self.retries or not _may_retry(error, safe):
                    raise
                time.sleep(_wait(error, attempt))

    def _send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
            if response.is_success:
                return response
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise _transport_error(self.url, exc) from exc
        raise ApiError.from_response(response)


def _transport_error(url: str, exc: httpx.TransportError) -> ApiError:
    # Name the server and the failure only: never the headers, so never the key.
    return ApiError(0, "connection", f"cannot reach {url}: {str(exc) or type(exc).__name__}")


def _may_retry(error: ApiError, safe: bool) -> bool:
    """Transient, and unable to store twice: the request is idempotent, the
    server refused it (429/503), or the connection was never made."""
    refused = error.status in (429, 503) or isinstance(error.__cause__, httpx.ConnectError)
    return error.transient and (safe or refused)


def _wait(error: ApiError, attempt: int) -> float:
    if error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_WAIT)
    return min(0.2 * 2.0 ** (attempt - 1), MAX_RETRY_WAIT) * random.uniform(0.5, 1.0)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (the server sends delta-seconds; a date is ignored)."""
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _encode(event: EventLike) -> bytes:
    if not isinstance(event, EventInput | Mapping):
        raise TypeError(f"an event is a dict or an EventInput, not {type(event).__name__}")
    return msgspec.json.encode(event)


def _has_id(event: EventLike) -> bool:
    return bool(event.id if isinstance(event, EventInput) else event.get("id"))


def _chunks(encoded: list[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    """(first index, events) groups of at most `size` events and MAX_BATCH_BYTES."""
    chunk: list[bytes] = []
    start = used = 0
    for index, body in enumerate(encoded):
        if chunk and (len(chunk) == size or used + len(body) > MAX_BATCH_BYTES):
            yield start, chunk
            start, chunk, used = index, [], 0
        chunk.append(body)
        used += len(body) + 1
    if chunk:
        yield start, chunk


def _chunk_key(key: str | None, start: int) -> str | None:
    """The idempotency key of the request starting at `start`: unchanged for the first."""
    if not key or start == 0:
        return key
    suffixed = f"{key}:{start}"
    if len(suffixed) <= MAX_IDEMPOTENCY_KEY:
        return suffixed
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}:{start}"


def _headers(key: str | None) -> dict[str, str]:
    return {"content-type": "application/json", **({"idempotency-key": key} if key else {})}


def _check_filters(method: str, filters: Mapping[str, FilterValue]) -> None:
    """A TypeError naming each keyword that is not one of the API's filters
    (`fmt=` or a typo would otherwise be sent, and silently ignored or refused)."""
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise TypeError(
            f"{method}() got unknown filter(s) {', '.join(map(repr, unknown))}; "
            f"the filters are {', '.join(FILTERS)}"
        )


def _params(filters: Mapping[str, FilterValue], **extra: str | int | None) -> dict[str, str]:
    """Query parameters: None dropped, datetimes as RFC 3339 in UTC, dates as
    YYYY-MM-DD, timedeltas as a duration in seconds (`90s`)."""
    params: dict[str, str] = {}
    for name, value in {**filters, **extra}.items():
        if isinstance(value, datetime):
            moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value
            params[name] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, date):
            params[name] = value.isoformat()
        elif isinstance(value, timedelta):
            params[name] = _duration(value, name)
        elif value is not None:
            params[name] = str(value)
    return params


def _duration(value: timedelta, name: str) -> str:
    """A timedelta as the API's duration form, in whole seconds."""
    if value < timedelta(0):
        raise ValueError(f"{name}: a duration before now cannot be negative, got {value}")
    return f"{value // timedelta(seconds=1)}s"


def _decode(response: httpx.Response, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        message = f"the server's answer is not a valid {kind.__name__}: {exc}"
        raise ApiError(response.status_code, "bad_response", message, None, response.text) from None


def id_segment(event_id: str) -> str:
    """`event_id` as the one path segment of `GET /v1/events/{id}`: every
    reserved character percent-encoded (`/` as `%2F`), and the ids `.` and
    `..` as `%2E` and `%2E%2E`, which clients would otherwise resolve away."""
    segment = quote(event_id, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment

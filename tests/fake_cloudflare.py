"""A fake Cloudflare audit-log API on 127.0.0.1, for tests and the benchmark.

Serves v1 (`/client/v4/accounts/{id}/audit_logs`, numbered pages) and v2
(`/client/v4/accounts/{id}/logs/audit`, opaque cursors) for any number of
accounts, filtered by time (`since` inclusive, `before` exclusive) and sorted
by time then id. It checks the bearer token, records every request, injects
faults on demand (429 with Retry-After, 500, hangs, `success: false`) and
hides items until its clock passes their `visible_after`.
"""

from __future__ import annotations

import base64
import bisect
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

PREFIX = "/client/v4/accounts/"
AUTH_ERROR = {"code": 10000, "message": "Authentication error"}
RATE_ERROR = {"code": 971, "message": "Please wait and consider throttling your request speed"}
SERVER_ERROR = {"code": 10001, "message": "Internal server error"}
_NAMESPACE = uuid.UUID("6f1c1f0e-5a57-4c3e-9d62-8c3c0f1d2a11")
_V1_ACTIONS = ("change_setting", "create", "delete", "update", "login", "purge")
_V2_ACTIONS = (("create", "Add Member"), ("update", "Update DNS Record"), ("delete", "Delete"))
Key = tuple[datetime, str]


@dataclass(frozen=True)
class Recorded:
    """One request as received; header names lower-cased."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Fault:
    kind: str  # "429", "500", "hang", "unsuccessful"
    remaining: int
    retry_after: str | None = None
    delay: float = 0.0
    status: int = 200
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Account:
    keys: list[Key] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    visible_after: list[datetime | None] = field(default_factory=list)
    late: int = 0  # items with a visible_after (0: no filtering needed)


class _BadRequest(Exception):
    pass


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC with a `Z` (naive means UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _hex_id(*parts: object) -> str:
    return uuid.uuid5(_NAMESPACE, ":".join(map(str, parts))).hex


def v1_item(n: int, when: datetime, account_id: str) -> dict[str, Any]:
    """Item `n` of `account_id` in the v1 shape (cloudflare-v1-item.json);
    unique per (account, n); every tenth fails."""
    user = n % 13
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"v1:{account_id}:{n}")),
        "action": {"result": n % 10 != 9, "type": _V1_ACTIONS[n % len(_V1_ACTIONS)]},
        "actor": {
            "id": _hex_id("user", user),
            "email": f"user{user}@example.com",
            "ip": f"198.41.{n // 256 % 256}.{n % 256}",
            "type": "user",
        },
        "interface": "API" if n % 2 else "UI",
        "metadata": {
            "name": "security_level",
            "type": "firewall",
            "value": "high",
            "zone_name": f"zone{n % 7}.example.com",
        },
        "newValue": "low",
        "oldValue": "high",
        "owner": {"id": account_id},
        "resource": {"id": _hex_id(account_id, "zone", n % 7), "type": "zone"},
        "when": rfc3339(when),
    }


def v2_item(n: int, when: datetime, account_id: str) -> dict[str, Any]:
    """Item `n` of `account_id` in the v2 shape (cloudflare-v2-item.json);
    unique per (account, n); every fifth by an API token, every tenth fails,
    every third in a zone."""
    user, kind = n % 13, _V2_ACTIONS[n % len(_V2_ACTIONS)]
    token = n % 5 == 4
    zone = {"id": _hex_id(account_id, "zone", n % 7), "name": f"zone{n % 7}.example.com"}
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"v2:{account_id}:{n}")),
        "account": {"id": account_id, "name": f"Account {account_id[:8]}"},
        "action": {
            "description": kind[1],
            "result": "failure" if n % 10 == 9 else "success",
            "time": rfc3339(when),
            "type": kind[0],
        },
        "actor": {
            "id": _hex_id("user", user),
            "context": "api_token" if token else "dash",
            "email": f"user{user}@example.com",
            "ip_address": f"198.41.{n // 256 % 256}.{n % 256}",
            "token_id": _hex_id("token", user) if token else "",
            "token_name": f"deploy-{user}" if token else "",
            "type": "user",
        },
        "raw": {
            "cf_ray_id": f"{n:016x}",
            "method": "POST",
            "status_code": 500 if n % 10 == 9 else 200,
            "uri": f"/accounts/{account_id}/members",
            "user_agent": "Mozilla/5.0" if not token else "curl/8.5.0",
        },
        "resource": {
            "id": _hex_id(account_id, "member", n),
            "product": "members",
            "request": {"email": f"member{n}@example.com"},
            "response": {"status": "pending"},
            "scope": "accounts",
            "type": "member",
        },
        "zone": zone if n % 3 == 0 else {"id": "", "name": ""},
    }


def _item_time(item: Any) -> datetime | None:
    """`when` (v1) or `action.time` (v2), if readable."""
    if not isinstance(item, dict):
        return None
    action = item.get("action")
    text = item.get("when") or (action.get("time") if isinstance(action, dict) else None)
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return None if moment is None else moment.replace(tzinfo=moment.tzinfo or UTC)


class FakeCloudflare:
    """The fake API until `close()`; `base_url` is the `/client/v4` root.

    `requests` lists every request received (also those answered with a fault).
    """

    def __init__(
        self, token: str = "cf-test-token", clock: Callable[[], datetime] | None = None
    ) -> None:
        self.token = token
        self.clock = clock or (lambda: datetime.now(UTC))
        self.requests: list[Recorded] = []
        self._accounts: dict[str, _Account] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/client/v4"
        # A short poll interval makes `close()` quick (it waits for one).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def add(
        self,
        account_id: str,
        items: Iterable[Any],
        visible_after: datetime | None = None,
        at: datetime | None = None,
    ) -> None:
        """Store `items` for `account_id`, hidden until the clock reaches
        `visible_after`. Each is filed under its own time; one without a
        readable time (a malformed item) under `at`, else the time of the item
        before it in this call, else the clock's now."""
        with self._lock:
            account = self._accounts.setdefault(account_id, _Account())
            previous = at or self.clock()
            for item in items:
                moment = _item_time(item) or at or previous
                previous = moment
                item_id = item.get("id") if isinstance(item, dict) else None
                key = (
                    moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC),
                    str(item_id or ""),
                )
                index = bisect.bisect_right(account.keys, key)
                account.keys.insert(index, key)
                account.items.insert(index, item)
                account.visible_after.insert(index, visible_after)
                account.late += visible_after is not None

    def fail_429(self, n: int, retry_after: float | str | None = 1) -> None:
        """The next `n` responses are 429, with `Retry-After` unless None."""
        after = None if retry_after is None else str(retry_after)
        self._add_fault(_Fault("429", n, retry_after=after))

    def fail_500(self, n: int, status: int = 500) -> None:
        """The next `n` responses are `status` (a 5xx) with Cloudflare's error body."""
        self._add_fault(_Fault("500", n, status=status))

    def hang(self, n: int, delay: float) -> None:
        """The next `n` requests wait `delay` seconds before being answered."""
        self._add_fault(_Fault("hang", n, delay=delay))

    def fail_unsuccessful(
        self, n: int, errors: list[dict[str, Any]] | None = None, status: int = 200
    ) -> None:
        """The next `n` responses are `success: false` with `errors`."""
        errors = errors or [{"code": 1003, "message": "Invalid or missing account"}]
        self._add_fault(_Fault("unsuccessful", n, status=status, errors=errors))

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    def close(self) -> None:
        """Stop serving (hanging requests are released)."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeCloudflare:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                self._faults.append(fault)

    def _take_fault(self) -> _Fault | None:
        """Under the lock: the next fault to apply, counted down."""
        while self._faults and self._faults[0].remaining <= 0:
            self._faults.pop(0)
        if not self._faults:
            return None
        self._faults[0].remaining -= 1
        return self._faults[0]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(url.path, params, headers))
            fault = self._take_fault()
        if fault is not None and fault.kind == "hang":
            self._stop.wait(fault.delay)
        elif fault is not None:
            _send(handler, *_fault_response(fault))
            return
        if headers.get("authorization") != f"Bearer {self.token}":
            _send(handler, 401, _failure([AUTH_ERROR]))
            return
        try:
            status, body = self._route(url.path, params)
        except _BadRequest as exc:
            status, body = 400, _failure([{"code": 1001, "message": str(exc)}])
        _send(handler, status, body)

    def _route(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        account, _, endpoint = path.removeprefix(PREFIX).partition("/")
        if path.startswith(PREFIX) and endpoint == "audit_logs":
            return 200, self._v1(account, params)
        if path.startswith(PREFIX) and endpoint == "logs/audit":
            return 200, self._v2(account, params)
        return 404, _failure([{"code": 7003, "message": f"No route for {path}"}])

    def _v1(self, account: str, params: dict[str, str]) -> dict[str, Any]:
        per_page = _int(params, "per_page", 25, 1000)
        page = _int(params, "page", 1, 10**9)
        hide_users = params.get("hide_user_logs") == "true"
        _keys, items = self._select(account, params, hide_users)
        chunk = items[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": math.ceil(len(items) / per_page),
        }
        return {**_success(chunk), "messages": [], "result_info": info}

    def _v2(self, account: str, params: dict[str, str]) -> dict[str, Any]:
        for name in ("since", "before"):
            if not params.get(name):
                raise _BadRequest(f"{name} is required")
        limit = _int(params, "limit", 100, 1000)
        keys, items = self._select(account, params, hide_users=False)
        start = 0
        if params.get("cursor"):
            position = _decode_cursor(params["cursor"])
            start = _after(keys, position, params.get("direction") == "desc")
        chunk = items[start : start + limit]
        more = start + len(chunk) < len(items)
        cursor = _encode_cursor(keys[start + len(chunk) - 1]) if chunk and more else ""
        return {**_success(chunk), "result_info": {"count": len(chunk), "cursor": cursor}}

    def _select(
        self, account_id: str, params: dict[str, str], hide_users: bool
    ) -> tuple[list[Key], list[Any]]:
        """The visible items of the window in `params`, in the asked direction."""
        since, before = _time_param(params, "since"), _time_param(params, "before")
        with self._lock:
            account = self._accounts.get(account_id)
            if account is None:
                return [], []
            lo = 0 if since is None else bisect.bisect_left(account.keys, (since, ""))
            hi = len(account.keys)
            if before is not None:
                hi = bisect.bisect_left(account.keys, (before, ""))
            keys, items = account.keys[lo:hi], account.items[lo:hi]
            visible = account.visible_after[lo:hi] if account.late else None
        if visible is not None or hide_users:
            now = self.clock()
            keep = [
                (after is None or now >= after) and not (hide_users and _by_user(item))
                for item, after in zip(items, visible or [None] * len(items), strict=True)
            ]
            keys = [k for k, ok in zip(keys, keep, strict=True) if ok]
            items = [i for i, ok in zip(items, keep, strict=True) if ok]
        if params.get("direction") == "desc":
            keys.reverse()
            items.reverse()
        return keys, items


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def _handler_for(fake: FakeCloudflare) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections
        timeout = 30  # idle keep-alive connections end
        # Headers and body go out as two writes; with Nagle on, each small
        # answer waited for the client's delayed ACK (40 ms).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            fake._serve(self)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = msgspec.json.encode(body)
    try:
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
        handler.close_connection = True


def _fault_response(fault: _Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    if fault.kind == "429":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return 429, _failure([RATE_ERROR]), headers
    if fault.kind == "500":
        return fault.status, _failure([SERVER_ERROR]), {}
    return fault.status, _failure(fault.errors), {}


def _success(result: list[Any]) -> dict[str, Any]:
    return {"success": True, "errors": [], "result": result}


def _failure(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": False, "errors": errors, "messages": [], "result": None}


def _by_user(item: Any) -> bool:
    actor = item.get("actor") if isinstance(item, dict) else None
    return isinstance(actor, dict) and actor.get("type") == "user"


def _int(params: dict[str, str], name: str, default: int, most: int) -> int:
    try:
        value = int(params.get(name) or default)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None
    if not 1 <= value <= most:
        raise _BadRequest(f"{name} must be between 1 and {most}")
    return value


def _time_param(params: dict[str, str], name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(f"{name} must be an RFC 3339 time") from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([key[0].isoformat(), key[1]])).decode()


def _decode_cursor(cursor: str) -> Key:
    try:
        moment, item_id = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment), str(item_id)
    except (ValueError, TypeError, msgspec.DecodeError):
        raise _BadRequest("cursor is invalid") from None


def _after(keys: list[Key], position: Key, descending: bool) -> int:
    """The index of the first key past `position` in the walking direction."""
    if not descending:
        return bisect.bisect_right(keys, position)
    # Descending: count the keys at or after `position` (they come first).
    return len(keys) - bisect.bisect_left(keys[::-1], position)

"""Routes that answer for a path as a whole, and the one route that carries an id.

Starlette's `Route` serves one set of methods; two routes on one path made a
405 name only the first route's methods (`Allow: POST` on `/v1/events`,
which serves GET too). A `Resource` holds every method of its path, so a 405
and `OPTIONS` both name exactly what is served.

`EventIdRoute` takes the id from one raw path segment. Stored ids may hold
`/`, so a route on the decoded path (`{event_id:path}`) also matched
`/v1/events/batch/` (a GET of the id `batch/`, so POST got 405, not 404) and
could be shadowed by any fixed route below `/v1/events/`. A client sends the
id percent-encoded (`a%2Fb` for `a/b`, `%2E%2E` for `..`), so no id needs a
literal `/` and every id is one segment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from auditlake.web.metrics import ROUTE_LABEL

Endpoint = Callable[[Request], Awaitable[Response]]


class Methods:
    """The handlers of one path by method, and the `Allow` value naming them."""

    def __init__(self, handlers: Mapping[str, Endpoint]) -> None:
        table = {method.upper(): handler for method, handler in handlers.items()}
        if "GET" in table:
            table.setdefault("HEAD", table["GET"])
        self.handlers = table
        self.served = frozenset({*table, "OPTIONS"})
        self.allow = ", ".join(sorted(self.served))


# Where a route that serves several method tables puts the matched one.
_METHODS = "auditlake.methods"


class Resource(Route):
    """One path and every method it serves.

    GET also serves HEAD; OPTIONS answers 204 with `Allow` unless `handlers`
    has its own (the CloudEvents validation handshake). Any other method gets
    405 with the same `Allow`.
    """

    def __init__(self, path: str, handlers: Mapping[str, Endpoint]) -> None:
        self.table = Methods(handlers)
        super().__init__(path, self._dispatch, methods=list(self.table.served))

    async def _dispatch(self, request: Request) -> Response:
        table: Methods = request.scope.get(_METHODS, self.table)
        handler = table.handlers.get(request.method)
        if handler is None:  # OPTIONS with no handler of its own

            async def options(_request: Request) -> Response:
                return Response(status_code=204, headers={"Allow": table.allow})

            handler = options
        # The request metrics label a request by its endpoint's name.
        request.scope["endpoint"] = handler
        return await handler(request)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        table: Methods = scope.get(_METHODS, self.table)
        if scope["method"] not in table.served:
            # Counted under the path's template: no handler ran (`_dispatch` would name none).
            scope[ROUTE_LABEL] = self.path
            raise HTTPException(405, headers={"Allow": table.allow})
        await self.app(scope, receive, send)


class EventIdRoute(Resource):
    """`<prefix><id>`: the id is the one percent-encoded segment after `prefix`.

    `fixed` gives the methods of fixed paths below `prefix` (`batch` for
    `POST /v1/events/batch`); those paths serve the id's methods too, so an
    event named `batch` is fetched like any other. A path with more segments,
    or none, is not this route (404).
    """

    def __init__(
        self,
        prefix: str,
        name: str,
        handlers: Mapping[str, Endpoint],
        fixed: Mapping[str, Mapping[str, Endpoint]] | None = None,
    ) -> None:
        assert prefix.endswith("/")
        self.prefix = prefix
        self.param = name
        self.fixed = {
            segment: Methods({**handlers, **more}) for segment, more in (fixed or {}).items()
        }
        super().__init__(f"{prefix}{{{name}}}", handlers)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = _raw_route_path(scope)
        segment = path[len(self.prefix) :]
        if not path.startswith(self.prefix) or not segment or "/" in segment:
            return Match.NONE, {}
        event_id = _decoded(segment)
        if event_id is None:  # no stored id is that: a 404, like any other missing event
            return Match.NONE, {}
        params: dict[str, Any] = {**scope.get("path_params", {})}
        params[self.param] = event_id
        table = self.fixed.get(params[self.param], self.table)
        child = {"endpoint": self.endpoint, "path_params": params, _METHODS: table}
        return (Match.FULL if scope["method"] in table.served else Match.PARTIAL), child


def _decoded(segment: str) -> str | None:
    """The id a path segment names: its percent-encoded octets (and any raw
    ones, read as latin-1 by the server) as UTF-8; None when they are not
    UTF-8 (`%FF`, the overlong `%C0%AF`, the cut `%E2%82`). Decoding those
    with replacement would give several segments one id."""
    try:
        return unquote_to_bytes(segment.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def _raw_route_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded), without the
    query and without the app's `root_path`."""
    raw: bytes | None = scope.get("raw_path")
    path = raw.split(b"?", 1)[0].decode("latin-1") if raw else quote(scope["path"])
    root = quote(scope.get("root_path", ""))
    return path.removeprefix(root) if root and path.startswith(root + "/") else path

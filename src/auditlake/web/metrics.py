"""Request metrics of the HTTP layer: the latency of every request, by
route, method and status, into the service's `Metrics`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from auditlake.metrics import Metrics

ASGIApp = Callable[..., Any]
CLIENT_CLOSED_REQUEST = 499
# Set in the ASGI scope by a streamed answer whose client hung up mid-way.
CLIENT_GONE = "auditlake.client_gone"
# Set in the ASGI scope by a streamed answer that failed after its 200 was
# sent (the status of its error), so the metrics count that, not the 200.
FAILED_STATUS = "auditlake.failed_status"


# A request's `route` label when no handler ran but the path is known (a 405):
# the path's template, set by the router.
ROUTE_LABEL = "auditlake.route_label"


class RequestTimer:
    """ASGI middleware observing the latency of every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = scope.get("endpoint")
            route = scope.get(ROUTE_LABEL) or getattr(endpoint, "__name__", "unmatched")
            # A client that left before the whole answer: 499, as nginx counts it.
            code = CLIENT_CLOSED_REQUEST if scope.get(CLIENT_GONE) else status[0]
            code = scope.get(FAILED_STATUS, code)
            self.metrics.request_seconds.labels(route, scope["method"], str(code)).observe(
                time.perf_counter() - started
            )

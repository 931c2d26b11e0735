"""Assembling the HTTP application: routes, error bodies, lifespan, metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from auditlake.errors import AuditlakeError
from auditlake.runtime import Services
from auditlake.web.auth import Authenticator
from auditlake.web.cloudevents import CloudEventsRoutes
from auditlake.web.events import EventRoutes
from auditlake.web.export import ExportRoute
from auditlake.web.metrics import CLIENT_CLOSED_REQUEST, RequestTimer
from auditlake.web.openapi import openapi_document
from auditlake.web.routing import EventIdRoute, Resource
from auditlake.work_limits import SharedCall

log = logging.getLogger(__name__)
# How long /readyz waits for the store to answer a ping.
READY_TIMEOUT = 2.0


def create_app(services: Services, *, manage_lifecycle: bool = True) -> Starlette:
    """The ASGI app over running `services`.

    With `manage_lifecycle` the app starts the services on startup and drains
    and closes them on shutdown.
    """
    auth = Authenticator(services.keys, services.settings.key_cache_seconds, services.pools)
    events = EventRoutes(services, auth)
    export = ExportRoute(services, auth)
    ops = _OpsRoutes(services)
    # One Resource per path with all its methods (so 405 and OPTIONS name them
    # all); the id route takes one encoded segment, so no fixed path shadows an id.
    routes: list[BaseRoute] = [
        Resource("/v1/events", {"GET": events.search_events, "POST": events.publish_event}),
        EventIdRoute(
            "/v1/events/",
            "event_id",
            {"GET": events.get_event},
            fixed={"batch": {"POST": events.publish_batch}},
        ),
        Resource("/v1/export", {"GET": export.export_events}),
        Resource("/healthz", {"GET": ops.healthz}),
        Resource("/readyz", {"GET": ops.readyz}),
        Resource("/metrics", {"GET": ops.metrics}),
        Resource("/openapi.json", {"GET": ops.openapi}),
    ]
    for source in services.settings.sources.cloudevents:
        receiver = CloudEventsRoutes(services, auth, source)
        handlers = {"POST": receiver.receive, "OPTIONS": receiver.handshake}
        routes.append(Resource(source.path, handlers))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            services.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                services.close()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestTimer, metrics=services.metrics)],
        exception_handlers={
            AuditlakeError: _auditlake_error,
            ClientDisconnect: _client_gone,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    # A path that is not a route is a 404, not a redirect to a similar one.
    app.router.redirect_slashes = False
    return app


class _OpsRoutes:
    def __init__(self, services: Services) -> None:
        self.services = services
        # One ping at a time, shared by concurrent probes: while the store
        # hangs, probes answer 503 without leaving a thread behind each.
        self._ping = SharedCall(services.store.ping, READY_TIMEOUT, "readyz-ping")
        # Likewise each consumer's lag read for /metrics (it reads the journal).
        self._lags: dict[str, SharedCall[tuple[int, float]]] = {}

    async def healthz(self, _request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        """Readiness: the journal writer runs and its writes work, the
        recorder runs and the store answers reads (within READY_TIMEOUT of
        the pending ping, on a thread no search can take)."""
        problems = []
        journal = self.services.journal
        if not journal.healthy():
            problems.append("journal writer is not running")
        elif (failure := journal.write_failure()) is not None:
            problems.append(f"journal writes fail: {failure}")
        recorder = self.services.recorder
        if recorder is not None and not recorder.healthy():
            problems.append("recorder is not running")
        try:
            await self._ping.result()
        except TimeoutError:
            problems.append(f"store: no answer within {READY_TIMEOUT:g} s")
        except Exception as exc:
            problems.append(f"store: {exc}")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, 503)
        return JSONResponse(
            {
                "status": "ready",
                "queued_events": self.services.journal.pending(),
                "index_lag_events": self.services.index_lag(),
            }
        )

    async def metrics(self, _request: Request) -> Response:
        """Prometheus text format."""
        metrics = self.services.metrics
        metrics.queue_events.set(self.services.journal.pending())
        metrics.index_lag.set(self.services.index_lag())
        consumers = self.services.consumers
        for runner in consumers.runners if consumers else []:
            lag = self._lags.setdefault(
                runner.name, SharedCall(runner.lag, READY_TIMEOUT, f"lag-{runner.name}")
            )
            try:
                events, seconds = await lag.result()
            except TimeoutError:  # the gauges keep their last values; the scrape answers
                log.warning("consumer %s: no lag within %s s", runner.name, READY_TIMEOUT)
                continue
            metrics.consumer_lag_events.labels(runner.name).set(events)
            metrics.consumer_lag_seconds.labels(runner.name).set(seconds)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(self, _request: Request) -> Response:
        """The OpenAPI 3.1 description of this API."""
        settings = self.services.settings
        return JSONResponse(openapi_document(settings.sources.cloudevents, settings.limits))


async def _auditlake_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuditlakeError)
    headers = None
    if exc.status in (429, 503):
        details = exc.details if isinstance(exc.details, dict) else {}
        headers = {"retry-after": str(details.get("retry_after", 1))}
    return JSONResponse(exc.to_body(), exc.status, headers=headers)


async def _client_gone(request: Request, _exc: Exception) -> Response:
    """The client hung up before its request was read: not a server fault.

    Nobody reads this answer; its status, 499 as nginx has it, is what the
    request metrics count."""
    log.debug("the client of %s %s closed the request", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": exc.detail, "details": None}}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _unexpected_error(_request: Request, _exc: Exception) -> Response:
    # Starlette raises the exception on to the server, which logs it once.
    body = {"error": {"code": "internal", "message": "internal error", "details": None}}
    return JSONResponse(body, 500)

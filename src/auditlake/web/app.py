"""Assembling the HTTP application: routes, error bodies, lifespan, metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auditlake.errors import AuditlakeError
from auditlake.web.auth import Authenticator
from auditlake.web.cloudevents import CloudEventsRoutes
from auditlake.web.events import EventRoutes
from auditlake.web.export import ExportRoute
from auditlake.web.metrics import RequestTimer
from auditlake.web.openapi import openapi_document
from auditlake.web.services import Services

log = logging.getLogger(__name__)


def create_app(services: Services, *, manage_lifecycle: bool = True) -> Starlette:
    """The ASGI app over running `services`.

    With `manage_lifecycle` the app starts the services on startup and drains
    and closes them on shutdown.
    """
    auth = Authenticator(services.keys, services.settings.key_cache_seconds)
    events = EventRoutes(services, auth)
    export = ExportRoute(services, auth)
    ops = _OpsRoutes(services)
    routes = [
        Route("/v1/events", events.publish_event, methods=["POST"]),
        Route("/v1/events", events.search_events, methods=["GET"]),
        Route("/v1/events/batch", events.publish_batch, methods=["POST"]),
        Route("/v1/events/export", export.export_events, methods=["GET"]),
        Route("/v1/events/{event_id:path}", events.get_event, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/openapi.json", ops.openapi, methods=["GET"]),
    ]
    for source in services.settings.sources.cloudevents:
        receiver = CloudEventsRoutes(services, auth, source)
        routes.append(Route(source.path, receiver.receive, methods=["POST"]))
        routes.append(Route(source.path, receiver.handshake, methods=["OPTIONS"]))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            services.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                services.close()

    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestTimer, metrics=services.metrics)],
        exception_handlers={
            AuditlakeError: _auditlake_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )


class _OpsRoutes:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def healthz(self, _request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        """Readiness: the journal writer runs and the store answers reads."""
        problems = []
        if not self.services.journal.healthy():
            problems.append("journal writer is not running")
        recorder = self.services.recorder
        if recorder is not None and not recorder.healthy():
            problems.append("recorder is not running")
        try:
            await run_in_threadpool(self.services.store.ping)
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
            events, seconds = await run_in_threadpool(runner.lag)
            metrics.consumer_lag_events.labels(runner.name).set(events)
            metrics.consumer_lag_seconds.labels(runner.name).set(seconds)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi(self, _request: Request) -> Response:
        """The OpenAPI 3.1 description of this API."""
        return JSONResponse(openapi_document(self.services.settings.sources.cloudevents))


async def _auditlake_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuditlakeError)
    headers = {"retry-after": "1"} if exc.status == 503 else None
    return JSONResponse(exc.to_body(), exc.status, headers=headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": exc.detail, "details": None}}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


async def _unexpected_error(_request: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc)
    body = {"error": {"code": "internal", "message": "internal error", "details": None}}
    return JSONResponse(body, 500)

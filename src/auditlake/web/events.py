"""The events API: publish one or a batch, get one, search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Origin, parse_batch, parse_event
from auditlake.core.query import check_names, parse_query
from auditlake.errors import AuditlakeError, MalformedInput, NotFound
from auditlake.journal.base import AppendResult, BatchResult
from auditlake.keys.base import ApiKey
from auditlake.runtime import Services
from auditlake.web.auth import Authenticator, query_values, read_tenant
from auditlake.web.body import read_body
from auditlake.web.streams import PagedResponse, PageWalk, search_body, whole_page

SOURCE = "api"
MAX_IDEMPOTENCY_KEY = 255
JSON = "application/json"


Parser = Callable[[bytes, Limits], list[EventInput]]


class EventRoutes:
    """Handlers bound to one service's backends."""

    def __init__(self, services: Services, auth: Authenticator) -> None:
        self.services = services
        self.auth = auth
        self.limits = services.settings.limits

    async def publish_event(self, request: Request) -> Response:
        """POST /v1/events: one event; 201 created or 200 duplicate."""
        key = await self.auth.require(request, "ingest")
        results = await self._append(request, key, _parse_one, self.limits.max_event_bytes)
        return single_response(results[0])

    async def publish_batch(self, request: Request) -> Response:
        """POST /v1/events/batch: all events stored, or none."""
        key = await self.auth.require(request, "ingest")
        results = await self._append(request, key, parse_batch, self.limits.max_body_bytes)
        return batch_response(results)

    async def get_event(self, request: Request) -> Response:
        """GET /v1/events/{id}: one event of the key's tenant."""
        key = await self.auth.require(request, "read")
        tenant = read_tenant(request, key)
        check_names(query_values(request), ("tenant",))  # the one parameter of this route
        event_id = request.path_params["event_id"]
        # No search slot: a point read is cheap, and the read threads bound it.
        body = await self.services.pools.read(self.services.store.get, tenant, event_id)
        if body is None:
            raise NotFound(f"no event {event_id!r}")
        return Response(body, media_type=JSON)

    async def search_events(self, request: Request) -> Response:
        """GET /v1/events: one page of matching events and the next cursor,
        read and sent in bounded sub-pages (a 429 beyond the key's searches)."""
        key = await self.auth.require(request, "read")
        tenant = read_tenant(request, key)
        query = parse_query(tenant, query_values(request), now=datetime.now(UTC))
        slot = self.services.slots.hold(key.key_id, "search")
        try:
            await self.services.wait_searchable()
            walk = PageWalk(self.services.search_page, query, total=query.limit)
            first = await walk.next()  # before the 200, so a failed search gets its status
        except BaseException:
            slot.release()
            raise
        if walk.done:  # the page fit in one sub-page: a plain answer with its length
            slot.release()
            return Response(whole_page(query, walk, first), media_type=JSON)
        body = search_body(query, walk, first)
        return PagedResponse(body, media_type=JSON, on_close=slot.release)

    async def _append(
        self, request: Request, key: ApiKey, parse: Parser, cap: int
    ) -> list[AppendResult]:
        """Read, parse, normalize and journal; counts a rejected body's events
        (or 1 when the body did not parse that far)."""
        ingest = self.services.ingest
        # Before reading the body: waiting requests hold no memory.
        await ingest.admission.wait()
        inputs: list[EventInput] = []
        try:
            inputs = parse(await read_body(request, cap), self.limits)
            origin = self._origin(request, key)
        except AuditlakeError:
            ingest.rejected(SOURCE, len(inputs) or 1)
            raise
        stored = ingest.normalized(SOURCE, inputs, origin, self.limits)
        return await ingest.append(SOURCE, stored)

    def _origin(self, request: Request, key: ApiKey) -> Origin:
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise MalformedInput(  # a header fault, like a ce-* header's: 400
                f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
                [{"field": "Idempotency-Key", "message": "invalid length"}],
            )
        return Origin(
            tenant=key.tenant,
            caller=f"key:{key.key_id}",
            source=SOURCE,
            received_at=datetime.now(UTC),
            may_set_tenant=key.allows("admin"),
            idempotency_key=idempotency_key,
        )


def single_response(result: AppendResult) -> Response:
    """201 for a new event, 200 for a duplicate (an identical re-send; a
    different event under a stored id never gets here: `Conflict`, 409)."""
    status = 201 if result.status == "created" else 200
    return Response(msgspec.json.encode(result), status, media_type=JSON)


def batch_response(results: list[AppendResult]) -> Response:
    """201 if any event was new, 200 if all were duplicates."""
    created = sum(1 for r in results if r.status == "created")
    answer = BatchResult(results, created, len(results) - created)
    return Response(msgspec.json.encode(answer), 201 if created else 200, media_type=JSON)


def _parse_one(body: bytes, limits: Limits) -> list[EventInput]:
    return [parse_event(body, limits)]

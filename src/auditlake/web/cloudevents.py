"""The CloudEvents receiver: one route per configured source.

A request is authenticated the source's way (OIDC token, Standard Webhooks
signature, or an API key), its CloudEvents are read (binary, structured or
batch mode), the types the source keeps are mapped to events and journaled
all-or-nothing, and the others are acknowledged and counted as ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from auditlake.core.cloudevents import CloudEvent, map_cloudevent, type_kept
from auditlake.core.event import EventInput
from auditlake.core.normalize import Origin, Provenance
from auditlake.errors import AuditlakeError, Conflict, Forbidden, InvalidInput
from auditlake.journal.base import AppendResult
from auditlake.journal.dedupe import in_request_message
from auditlake.runtime import Services
from auditlake.source_settings import CloudEventsSource
from auditlake.vendors import PRESETS
from auditlake.web.auth import Authenticator
from auditlake.web.body import read_body, read_body_as_sent
from auditlake.web.cloudevents_http import is_batch, read_events
from auditlake.web.events import JSON, single_response
from auditlake.web.oidc import OidcVerifier
from auditlake.web.webhooks import StandardWebhookVerifier


class ReceiveResult(msgspec.Struct):
    """The answer to a batch: one result per CloudEvent, in order."""

    results: list[dict[str, Any]]
    created: int
    duplicates: int
    ignored: int


class CloudEventsRoutes:
    """The receiver of one `[[sources.cloudevents]]` block."""

    def __init__(self, services: Services, keys: Authenticator, source: CloudEventsSource) -> None:
        self.services = services
        self.keys = keys
        self.source = source
        self.label = f"cloudevents:{source.name}"
        self.preset = PRESETS[source.preset] if source.preset else None
        self.oidc = OidcVerifier(source.oidc) if source.auth == "oidc" and source.oidc else None
        self.webhook = (
            StandardWebhookVerifier(source.webhook)
            if source.auth == "webhook" and source.webhook
            else None
        )

    async def receive(self, request: Request) -> Response:
        """POST: journal the kept CloudEvents of the request (all or none)."""
        caller = await self._caller_before_body(request)
        await self.services.ingest.admission.wait()  # before reading the body, as /v1/events
        limits = self.services.settings.limits
        batch = is_batch(request.headers)
        cap = limits.max_body_bytes if batch else limits.max_event_bytes
        if self.webhook is None:
            return await self._receive(request, await read_body(request, cap), caller, batch)
        body = await read_body_as_sent(request, cap)  # the signature may be over either form
        delivery = self.webhook.verify(request.headers, body.data, body.sent)
        try:
            return await self._receive(request, body.data, f"webhook:{delivery}", batch)
        except BaseException:
            self.webhook.forget(delivery)  # not kept: the sender's retry is welcome
            raise

    async def _receive(self, request: Request, body: bytes, caller: str, batch: bool) -> Response:
        try:
            events = read_events(
                request.headers, body, self.services.settings.limits.max_batch_events
            )
        except AuditlakeError:
            self.services.ingest.rejected(self.label)
            raise
        kept = [e for e in events if type_kept(e.type, self.source.types)]
        try:
            results = await self._record(kept, caller) if kept else []
        except Conflict as conflict:
            raise _redelivery_conflict(conflict, events, kept) from None
        self.services.ingest.ignored(self.label, len(events) - len(kept))
        if not batch:
            if results:
                return single_response(results[0])
            return Response(b'{"status":"ignored"}', 200, media_type=JSON)
        return _batch_response(events, kept, results)

    async def handshake(self, request: Request) -> Response:
        """OPTIONS: the CloudEvents webhook validation handshake."""
        origin = request.headers.get("webhook-request-origin")
        if not origin:
            raise InvalidInput(
                "the validation handshake needs a WebHook-Request-Origin header",
                [{"field": "WebHook-Request-Origin", "message": "missing"}],
            )
        allowed = self.source.allowed_origins
        if "*" not in allowed and origin not in allowed:
            raise Forbidden(f"origin {origin!r} may not deliver to this source")
        headers = {"WebHook-Allowed-Origin": origin, "Allow": "POST, OPTIONS"}
        if request.headers.get("webhook-request-rate"):
            headers["WebHook-Allowed-Rate"] = "*"
        return Response(status_code=200, headers=headers)

    async def _caller_before_body(self, request: Request) -> str:
        """Who sends, for the methods that need no body (401/403 otherwise)."""
        if self.oidc is not None:
            header = request.headers.get("authorization")
            # On the key checks' threads, like API keys: an issuer that hangs
            # holds at most those, never the threads searches or probes use.
            claims = await self.services.pools.check_key(self.oidc.verify, header)
            return f"oidc:{claims.get('sub', '')}"
        if self.webhook is not None:
            return ""  # verified with the body
        key = await self.keys.require(request, "ingest")
        if key.tenant != self.source.tenant and not key.allows("admin"):
            raise Forbidden(f"this key may not write to the tenant of source {self.source.name!r}")
        return f"key:{key.key_id}"

    async def _record(self, events: list[CloudEvent], caller: str) -> list[AppendResult]:
        mapped = [self._map(event) for event in events]
        origin = Origin(
            tenant=self.source.tenant,
            caller=caller,
            source="cloudevents",
            received_at=datetime.now(UTC),
        )
        ingest = self.services.ingest
        inputs, provenance = [m[0] for m in mapped], [m[1] for m in mapped]
        limits = self.services.settings.limits
        stored = ingest.normalized(self.label, inputs, origin, limits, provenance)
        return await ingest.append(self.label, stored)

    def _map(self, event: CloudEvent) -> tuple[EventInput, Provenance]:
        item, provenance = map_cloudevent(event)
        if self.preset is not None:
            item = self.preset.refine(item, event)
        return item, provenance


def _batch_response(
    events: list[CloudEvent], kept: list[CloudEvent], results: list[AppendResult]
) -> Response:
    by_event = {id(event): result for event, result in zip(kept, results, strict=True)}
    answers: list[dict[str, Any]] = []
    for event in events:
        result = by_event.get(id(event))
        answers.append(
            {"id": result.id, "status": result.status}
            if result
            else {"id": None, "status": "ignored", "type": event.type}
        )
    created = sum(1 for r in results if r.status == "created")
    answer = ReceiveResult(answers, created, len(results) - created, len(events) - len(kept))
    return Response(msgspec.json.encode(answer), 201 if created else 200, media_type=JSON)


def _redelivery_conflict(
    conflict: Conflict, events: list[CloudEvent], kept: list[CloudEvent]
) -> Conflict:
    """The journal's conflict told in the sender's terms: each item's position
    in the request and its CloudEvent `id` and `source` (the event id is
    derived from them)."""
    position = {id(event): n for n, event in enumerate(events)}
    details = []
    for problem in conflict.detail_list() or []:
        event = kept[problem["index"]]
        attributes = event.attributes
        detail = {
            **problem, "index": position[id(event)],
            "cloudevent_id": attributes["id"], "cloudevent_source": attributes["source"],
        }  # fmt: skip
        if "other_index" in problem:  # the journal counted only the kept items
            detail["other_index"] = position[id(kept[problem["other_index"]])]
            detail["message"] = in_request_message(detail["other_index"])
        details.append(detail)
    first = details[0] if details else {}
    what = (
        "is in this request twice with different content"
        if "other_index" in first
        else "was delivered before with other content"
    )
    return Conflict(
        f"CloudEvent {first.get('cloudevent_id')!r} from {first.get('cloudevent_source')!r} "
        f"{what}; nothing was stored (a redelivery must be identical; a new event needs a "
        "new id)",
        details,
    )

"""The OpenAPI 3.1 document, with body schemas generated from the very
msgspec structs that decode requests and encode responses."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from auditlake.core.event import BatchInput, Event, EventInput
from auditlake.core.normalize import Limits
from auditlake.core.query import FILTER_NAMES
from auditlake.journal.base import AppendResult, BatchResult
from auditlake.source_settings import CloudEventsSource
from auditlake.web.openapi_cloudevents import add_receivers
from auditlake.web.openapi_common import errors, json_body, ref
from auditlake.web.openapi_constraints import constrain

_FILTER_DOCS = {
    "action": "Exact action, or a prefix ending in `*` (`user.*`).",
    "actor_id": "Actor id.",
    "actor_type": "Actor type.",
    "target_id": "Id of any target.",
    "target_type": "Type of any target.",
    "outcome": "`success` or `failure`.",
    "source": "Where the event came from (`api`, ...).",
    "since": (
        "occurred_at at or after this time: an RFC 3339 date-time with an offset "
        "(`2026-11-01T08:00:00Z`), a date (`2026-11-01`, midnight UTC), or a duration "
        "before now: a whole number and one unit of s, m, h, d, w (`15m`, `24h`, `7d`). "
        "A duration is counted from the first page's time: a cursor keeps the window. "
        "Any other form (or an empty value): 400 naming the accepted ones."
    ),
    "until": "occurred_at before this time, in the forms of `since`.",
    "q": (
        "Words that must all appear in actor or target ids, names or emails, the error, "
        "or metadata values (prefix match; case, Unicode normalization form and accents "
        "ignored). At most 8 words and 256 characters, else 400. A search that needs "
        "more than 1 s of work is stopped with a 422."
    ),
}


def _params(names: tuple[str, ...]) -> list[dict[str, Any]]:
    params = [
        {"name": n, "in": "query", "schema": {"type": "string"}, "description": _FILTER_DOCS[n]}
        for n in names
    ]
    params.append(_TENANT_PARAM)
    return params


_TENANT_PARAM = {
    "name": "tenant",
    "in": "query",
    "schema": {"type": "string"},
    "description": "Another tenant to read (admin keys only).",
}
_PAGING = [
    {"name": "order", "in": "query", "schema": {"enum": ["desc", "asc"], "default": "desc"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]


DEFAULT_LIMITS = Limits()


# Small: one entry per distinct set of sources and limits (in practice one per process).
@lru_cache(maxsize=8)
def openapi_document(
    sources: tuple[CloudEventsSource, ...] = (), limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The whole OpenAPI document, with a CloudEvents receiver per source and
    the body schemas held to `limits`."""
    document = _base_document()
    _alias_batch_get(document["paths"])
    constrain(document, limits)
    if sources:
        add_receivers(document, sources)
    return document


def _base_document() -> dict[str, Any]:
    """The events API and the operational routes."""
    (_, components) = msgspec.json.schema_components(
        [EventInput, BatchInput, Event, AppendResult, BatchResult],
        ref_template="#/components/schemas/{name}",
    )
    components["Error"] = _ERROR_SCHEMA
    # `conflict` is a journal status for pollers; the API answers 409 instead.
    components["AppendResult"]["properties"]["status"]["enum"] = ["created", "duplicate"]
    components["Page"] = {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": ref("Event")},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "schema": {"type": "string", "maxLength": 255},
        "description": (
            "Derives stable ids for events sent without one: a re-send of the same body is "
            "a duplicate, the same key with another body a 409."
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "auditlake", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": _API_KEY_SCHEME},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Publish one event",
                    "parameters": [idempotency],
                    "requestBody": {"required": True, **json_body("EventInput")},
                    "responses": {
                        "201": {"description": "Stored.", **json_body("AppendResult")},
                        "200": {
                            "description": "Already stored: an identical re-send (a duplicate).",
                            **json_body("AppendResult"),
                        },
                        **errors(400, 401, 403, 409, 413, 415, 422, 503),
                    },
                },
                "get": {
                    "summary": "Search events (newest first by default)",
                    "parameters": _params(FILTER_NAMES) + _PAGING,
                    "responses": {
                        "200": {"description": "One page.", **json_body("Page")},
                        **errors(400, 401, 403, 422, 429, described=_READ_ERRORS),
                    },
                },
            },
            "/v1/events/batch": {
                "post": {
                    "summary": "Publish up to 1,000 events, all or nothing",
                    "parameters": [idempotency],
                    "requestBody": {"required": True, **json_body("BatchInput")},
                    "responses": {
                        "201": {"description": "Some stored.", **json_body("BatchResult")},
                        "200": {
                            "description": "All duplicates, or an empty batch (nothing stored).",
                            **json_body("BatchResult"),
                        },
                        **errors(400, 401, 403, 409, 413, 415, 422, 503),
                    },
                },
            },
            "/v1/export": {
                "get": {
                    "summary": "Export every matching event",
                    "parameters": [
                        *_params(FILTER_NAMES),
                        {"name": "format", "in": "query", "schema": {"enum": ["ndjson", "csv"]}},
                        {"name": "order", "in": "query", "schema": {"enum": ["desc", "asc"]}},
                    ],
                    "responses": {
                        "200": {
                            "description": "NDJSON (one Event per line) or CSV.",
                            "content": {
                                "application/x-ndjson": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        **errors(400, 401, 403, 422, 429, described=_READ_ERRORS),
                    },
                },
            },
            "/v1/events/{event_id}": {
                "get": {
                    "summary": "Get one event",
                    "parameters": [
                        {"name": "event_id", "in": "path", "required": True,
                         "schema": {"type": "string"}},
                        _TENANT_PARAM,
                    ],
                    "responses": {
                        "200": {"description": "The event.", **json_body("Event")},
                        **errors(400, 401, 403, 404, described=_READ_ERRORS),
                    },
                },
            },
            "/healthz": _ops("Liveness"),
            "/readyz": _ops("Readiness: journal writer and store", unavailable=True),
            "/metrics": _ops("Prometheus metrics", "text/plain"),
            "/openapi.json": _ops("This document"),
        },
    }  # fmt: skip


# `errors.AuditlakeError`: `details` is null or a list of objects, each with a
# `message`, the `field` when one input is at fault, and keys of its status.
_DETAIL = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "field": {"type": "string", "description": "The body path, query parameter or header."},
        "message": {"type": "string"},
        "index": {"type": "integer", "description": "The item of the request (409, 422)."},
        "id": {"type": "string", "description": "409: the id that names two events."},
        "other_index": {"type": "integer", "description": "409: the other item with that id."},
        "encoding": {"type": "string", "description": "415: the Content-Encoding sent."},
        "supported": {"type": "array", "items": {"type": "string"}, "description": "415."},
        "limit": {"type": "integer", "description": "429: how many the key may run at once."},
        "retry_after": {"type": "number", "description": "429, 503: seconds to wait."},
    },
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"anyOf": [{"type": "null"}, {"type": "array", "items": _DETAIL}]},
            },
        }
    },
}


def _ops(
    summary: str, media: str = "application/json", unavailable: bool = False
) -> dict[str, Any]:
    responses = {"200": {"description": "OK", "content": {media: {"schema": {}}}}}
    if unavailable:
        responses["503"] = {"description": "Not ready; the body lists the problems.",
                            "content": {media: {"schema": {}}}}  # fmt: skip
    return {"get": {"summary": summary, "security": [], "responses": responses}}


def _alias_batch_get(paths: dict[str, Any]) -> None:
    """`/v1/events/batch` is also the id path of an event called `batch`, so
    GET there fetches that event (ids are never shadowed by a fixed route)."""
    get_one = paths["/v1/events/{event_id}"]["get"]
    parameters = [p for p in get_one["parameters"] if p["in"] != "path"]
    paths["/v1/events/batch"]["get"] = {
        **get_one,
        "summary": "Get the event whose id is `batch`",
        "parameters": parameters,
    }


_READ_ERRORS = {
    400: (
        "A query parameter that is unknown, given twice, empty, or out of its form: "
        "`since`/`until` in none of the accepted forms (the message names them), `limit`, "
        "`order`, `outcome` or `format` out of their values, a cursor of another search, "
        "`q` over its caps, a `tenant` that no tenant can be named; `details` names it."
    ),
    422: "The search was stopped after 1 s of work: narrow it (`since`/`until`, `action` ...).",
}


_API_KEY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An auditlake API key: `Authorization: Bearer <key>`.",
}

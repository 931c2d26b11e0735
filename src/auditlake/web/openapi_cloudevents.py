"""The OpenAPI description of the CloudEvents receivers: a POST (receive)
and an OPTIONS (validation handshake) path per configured source."""

from __future__ import annotations

from typing import Any

import msgspec

from auditlake.source_settings import CloudEventsSource
from auditlake.web.cloudevents import ReceiveResult
from auditlake.web.cloudevents_http import BATCH, STRUCTURED
from auditlake.web.openapi_common import STATUS, errors, ref

# Named after the `auth` setting of a `[[sources.cloudevents]]` block.
_RECEIVER_SCHEME = {"api_key": "apiKey", "oidc": "oidcToken", "webhook": "webhookSignature"}
_RECEIVER_SCHEMES = {
    "oidcToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An OIDC token signed by the source's issuer (keys from its JWKS), for its "
            "audience, with an accepted `sub`: `Authorization: Bearer <token>`."
        ),
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": (
            "Standard Webhooks: `v1,<base64 HMAC-SHA256>` of `webhook-id`, "
            "`webhook-timestamp` and the body, with the source's `whsec_` secret. "
            "The `webhook-id` and `webhook-timestamp` headers are required too; "
            "a timestamp outside the tolerance, or a webhook-id already accepted, is refused."
        ),
    },
}
_RECEIVER_401 = {
    "api_key": STATUS[401],
    "oidc": "No bearer token.",
    "webhook": "A `webhook-id`, `webhook-timestamp` or `webhook-signature` header is missing.",
}
_RECEIVER_403 = {
    "api_key": "The key lacks the ingest scope, or belongs to another tenant than the source's.",
    "oidc": (
        "The token is malformed, expired, not signed by the issuer with an allowed "
        "algorithm, for another audience, or its subject is not accepted."
    ),
    "webhook": (
        "The signature does not match, the timestamp is outside the tolerance, "
        "or the webhook-id was already accepted (a replay)."
    ),
}
_RECEIVER_ERRORS = {
    400: (
        "Malformed JSON (structured or batch mode, or JSON data in binary mode), a JSON "
        "object that names a key twice, a body not valid for its Content-Encoding, or a "
        "`ce-*` header the HTTP binding (3.1.3.2) refuses: an unclosed quoted string, bad "
        "percent-encoding, not UTF-8, a control character, or the header given twice. "
        "`details` names the header or the key's path."
    ),
    409: (
        "A redelivery (same `source` and `id`) with other content than the stored "
        "CloudEvent; nothing of the request was stored. `details` names each (`index`, "
        "`cloudevent_id`, `cloudevent_source`)."
    ),
    413: (
        "The body is over the size limit (an event's; the whole body's for a batch), "
        "decompressed with a Content-Encoding."
    ),
    422: (
        "Not a CloudEvent (no `ce-*` headers and not a CloudEvents media type), a missing "
        "or invalid attribute, a batch over the limit, or an event that does not "
        "map to a valid event; `details` lists each field (with `index` in a batch)."
    ),
}
_OIDC_503 = (
    "Overloaded or shutting down, or the issuer's signing keys cannot be fetched; "
    "retry after `Retry-After` seconds."
)
_CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "title": "CloudEvent",
    "description": (
        "A CloudEvent in the JSON event format (CloudEvents 1.0). Its attributes other "
        "than the spec's are extension attributes, kept as the event's metadata; the "
        "whole CloudEvent is kept as the event's `raw`."
    ),
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0", "0.3"]},
        "id": {"type": "string", "minLength": 1, "description": "Unique per source."},
        "source": {
            "type": "string",
            "minLength": 1,
            "format": "uri-reference",
            "description": "The producer; with `id`, it derives the event's stable id.",
        },
        "type": {"type": "string", "minLength": 1, "description": "The event's action."},
        "subject": {"type": "string", "minLength": 1, "description": "Kept as a target."},
        "time": {
            "type": "string",
            "format": "date-time",
            "description": "The event's occurred_at (receipt time when absent).",
        },
        "datacontenttype": {"type": "string", "minLength": 1},
        "dataschema": {"type": "string", "minLength": 1, "format": "uri"},
        "data": {"description": "The payload (JSON)."},
        "data_base64": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "The payload, when binary (instead of `data`).",
        },
    },
    "patternProperties": {"^[a-z0-9]+$": {"description": "An extension attribute."}},
    "additionalProperties": False,
}
_IGNORED_SCHEMA = {
    "title": "CloudEventIgnored",
    "description": "The CloudEvent's type is not kept by this source: acknowledged, dropped.",
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ignored"}},
    "additionalProperties": False,
}
_RECEIVE_ITEM_SCHEMA = {
    "title": "ReceiveItem",
    "description": "What happened to one CloudEvent of a batch.",
    "oneOf": [
        ref("AppendResult"),
        {
            "type": "object",
            "required": ["id", "status", "type"],
            "properties": {
                "id": {"type": "null"},
                "status": {"const": "ignored"},
                "type": {"type": "string"},
            },
        },
    ],
}
_BINARY_HEADERS = (
    ("ce-specversion", "`1.0`."),
    ("ce-id", "unique per source."),
    ("ce-source", "the producer (URI reference)."),
    ("ce-type", "the event type: the event's action."),
    ("ce-subject", "kept as a target."),
    ("ce-time", "RFC 3339: the event's occurred_at (receipt time when absent)."),
)
_REQUIRED_BINARY = frozenset({"ce-specversion", "ce-id", "ce-source", "ce-type"})


def add_receivers(document: dict[str, Any], sources: tuple[CloudEventsSource, ...]) -> None:
    """A POST (receive) and OPTIONS (validation handshake) path per source."""
    components = document["components"]
    (_, generated) = msgspec.json.schema_components(
        [ReceiveResult], ref_template="#/components/schemas/{name}"
    )
    schemas = components["schemas"]
    schemas.update(generated)
    # msgspec only knows `list[dict]`: name what each result holds.
    schemas["ReceiveResult"]["properties"]["results"]["items"] = ref("ReceiveItem")
    schemas["ReceiveItem"] = _RECEIVE_ITEM_SCHEMA
    schemas["CloudEvent"] = _CLOUDEVENT_SCHEMA
    schemas["CloudEventIgnored"] = _IGNORED_SCHEMA
    used = {_RECEIVER_SCHEME[_auth(s)] for s in sources}
    components["securitySchemes"].update(
        {name: scheme for name, scheme in _RECEIVER_SCHEMES.items() if name in used}
    )
    for source in sources:
        document["paths"][source.path] = {
            "post": _receive_operation(source),
            "options": _handshake_operation(source),
        }


def _auth(source: CloudEventsSource) -> str:
    # Loaded settings always name it; a bare struct is inferred the same way.
    return source.auth or ("oidc" if source.oidc else "webhook" if source.webhook else "api_key")


def _receive_operation(source: CloudEventsSource) -> dict[str, Any]:
    auth = _auth(source)
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "header",
            "required": False,
            "schema": {"type": "string", **({"format": "date-time"} if name == "ce-time" else {})},
            "description": (
                f"Binary mode, {'required' if name in _REQUIRED_BINARY else 'optional'}: {text}"
            ),
        }
        for name, text in _BINARY_HEADERS
    ]
    if auth == "webhook":
        parameters += [
            {"name": "webhook-id", "in": "header", "required": True,
             "schema": {"type": "string"}, "description": "The delivery's id (signed)."},
            {"name": "webhook-timestamp", "in": "header", "required": True,
             "schema": {"type": "string", "pattern": "^[0-9]+$"},
             "description": "Unix seconds of the delivery (signed)."},
        ]  # fmt: skip
    return {
        "summary": f"Receive CloudEvents (source {source.name!r})",
        "description": _receive_description(source, auth),
        "security": [{_RECEIVER_SCHEME[auth]: []}],
        "parameters": parameters,
        # Not required: a binary-mode CloudEvent without data has no body.
        "requestBody": {
            "description": (
                "Structured mode: one CloudEvent. Batch mode: an array of CloudEvents, "
                "all or nothing. Binary mode: the `ce-*` headers carry the attributes "
                "(other `ce-<name>` headers are extension attributes) and the body, if any, "
                "of any content type, is the data (JSON for JSON types). Header values are "
                "decoded as the HTTP binding (3.1.3.2) says: an older sender's quoted string "
                "is unquoted, then one round of UTF-8 percent-decoding. A batch may be empty. "
                "Any body may be sent with Content-Encoding gzip or deflate."
            ),
            "content": {
                STRUCTURED: {"schema": ref("CloudEvent")},
                BATCH: {"schema": {"type": "array", "items": ref("CloudEvent")}},
                "*/*": {"schema": {}},
            },
        },
        "responses": {
            "201": {
                "description": "Stored: the new event, or a batch with at least one new event.",
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [ref("AppendResult"), ref("ReceiveResult")]}
                    }
                },
            },
            "200": {
                "description": (
                    "Nothing new: a duplicate (redelivery), a type this source does not keep "
                    "(ignored), a batch of only those, or an empty batch."
                ),
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                ref("AppendResult"),
                                ref("CloudEventIgnored"),
                                ref("ReceiveResult"),
                            ]
                        }
                    }
                },
            },
            **errors(
                400, 401, 403, 409, 413, 415, 422, 503,
                described={
                    **_RECEIVER_ERRORS, 401: _RECEIVER_401[auth], 403: _RECEIVER_403[auth],
                    503: _OIDC_503 if auth == "oidc" else STATUS[503],
                },
            ),
        },
    }  # fmt: skip


def _receive_description(source: CloudEventsSource, auth: str) -> str:
    kept = (
        ", ".join(f"`{t}`" for t in source.types) + " (a `*` ends a prefix)"
        if source.types
        else "every type"
    )
    how = {
        "api_key": "an auditlake API key with the ingest scope",
        "oidc": "an OIDC bearer token",
        "webhook": "a Standard Webhooks signature",
    }[auth]
    if auth == "oidc" and source.oidc is not None:
        how += f" (issuer `{source.oidc.issuer}`, audience `{source.oidc.audience}`)"
    return (
        f"The CloudEvents receiver of source {source.name!r}, authenticated by {how}. "
        f"Kept types: {kept}; CloudEvents of other types are "
        "acknowledged and dropped. Binary, structured and batch content modes."
    )


def _handshake_operation(source: CloudEventsSource) -> dict[str, Any]:
    allowed = source.allowed_origins
    origins = "any" if "*" in allowed else ", ".join(f"`{o}`" for o in allowed) or "none"
    return {
        "summary": f"CloudEvents webhook validation handshake (source {source.name!r})",
        "description": (
            f"The abuse protection of the CloudEvents HTTP webhook spec; allowed origins: "
            f"{origins}. Needs no credentials."
        ),
        "security": [],
        "parameters": [
            {"name": "WebHook-Request-Origin", "in": "header", "required": True,
             "schema": {"type": "string"}, "description": "The sender asking to deliver."},
            {"name": "WebHook-Request-Rate", "in": "header", "required": False,
             "schema": {"type": "string"}, "description": "Requested deliveries per minute."},
        ],
        "responses": {
            "200": {
                "description": "The origin may deliver.",
                "headers": {
                    "WebHook-Allowed-Origin": {
                        "description": "The requesting origin.",
                        "schema": {"type": "string"},
                    },
                    "WebHook-Allowed-Rate": {
                        "description": "`*` (no limit), when a rate was requested.",
                        "schema": {"type": "string"},
                    },
                    "Allow": {"description": "`POST, OPTIONS`.", "schema": {"type": "string"}},
                },
            },
            **errors(
                403, 422,
                described={
                    403: "The origin is not one of the source's allowed origins.",
                    422: "No `WebHook-Request-Origin` header.",
                },
            ),
        },
    }  # fmt: skip

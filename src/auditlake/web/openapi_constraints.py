"""What the server checks, written into the OpenAPI document's schemas.

The body schemas come from the msgspec structs, which know types but not the
rules normalization applies (`core/normalize.py`: non-blank ids, lengths after
trimming, counts, ranges) nor how query parameters are read (`core/query.py`).
Without them the document called input valid that the server refuses, and a
client generated from it could not know. Each rule here names the check it
mirrors; the configured `Limits` give the numbers.
"""

from __future__ import annotations

from typing import Any

from auditlake.core.normalize import MAX_TIMESTAMP_MS, MAX_VERSION, Limits

# The tenant rule of `core.event.is_tenant`, in the ECMA-262 dialect.
TENANT_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"}
# normalize keeps occurred_at from 1970 on (RFC 3339 with an offset).
_SINCE_1970 = "^(19[7-9][0-9]|[2-9][0-9]{3})-"
# A query parameter may not be empty or blank (`core.query._refuse_blank`: 400).
_TEXT_PARAM = {"type": "string", "minLength": 1, "pattern": r"\S"}
# A duration before now, in counts that stay after the year 0001 whatever
# the unit (the server refuses one that reaches before it: 400).
_DURATION = "^([0-9]{1,10}s|[0-9]{1,9}m|[0-9]{1,7}h|[0-9]{1,5}d|[0-9]{1,5}w)$"
_MOMENT = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": _DURATION},
    ],
}
_TEXT_PARAMS = ("action", "actor_id", "actor_type", "target_id", "target_type", "source", "cursor")
_PARAMETERS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(_TEXT_PARAMS, _TEXT_PARAM),
    # `core.query.MAX_Q_CHARS` (the word cap has no schema form)
    "q": {**_TEXT_PARAM, "maxLength": 256},
    "outcome": {"enum": ["success", "failure"]},
    "since": _MOMENT,
    "until": _MOMENT,
    "tenant": TENANT_SCHEMA,
    "format": {"enum": ["ndjson", "csv"], "default": "ndjson"},
    "event_id": {"type": "string", "minLength": 1},
    # `web.events.MAX_IDEMPOTENCY_KEY`
    "Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 255},
}


def constrain(document: dict[str, Any], limits: Limits) -> None:
    """Add the server's checks to `document`'s body and parameter schemas, in place."""
    schemas = document["components"]["schemas"]
    _constrain_event(schemas, limits)
    schemas["BatchInput"]["properties"]["events"]["maxItems"] = limits.max_batch_events
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in _PARAMETERS:
                    parameter["schema"] = _PARAMETERS[parameter["name"]]


def _constrain_event(schemas: dict[str, Any], limits: Limits) -> None:
    ident = _identifier(limits.max_id_length)
    event = schemas["EventInput"]
    fields = event["properties"]
    fields["action"] = ident
    _set_text(fields["id"], ident)
    _set_text(fields["tenant"], TENANT_SCHEMA)
    _set_text(fields["occurred_at"], {"type": "string", "format": "date-time"})
    _set_text(fields["occurred_at"], {"pattern": _SINCE_1970})
    # Decoded as `int | float` so that 3.0 is 3: an integer in JSON Schema.
    timestamp = {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP_MS}
    fields["timestamp"] = {"anyOf": [timestamp, {"type": "null"}], "default": None}
    fields["version"] = {"type": "integer", "minimum": 1, "maximum": MAX_VERSION, "default": 1}
    fields["targets"]["maxItems"] = limits.max_targets
    # `timestamp` is the other form of `occurred_at`: one of them, not both.
    event["not"] = {
        "required": ["occurred_at", "timestamp"],
        "properties": {"occurred_at": {"type": "string"}, "timestamp": {"type": "integer"}},
    }
    for name in ("Actor", "Target"):
        schemas[name]["properties"]["id"] = ident
    for name in ("EventInput", "Actor", "Target"):
        _set_object(schemas[name]["properties"]["metadata"], limits.max_metadata_keys)
    text = {"maxLength": limits.max_string_length}
    for name, optional in (
        ("Actor", ("type", "name", "email", "ip")),
        ("Target", ("type", "name")),
        ("Context", ("location", "ip", "user_agent", "request_id")),
        ("ErrorInfo", ("code", "message")),
    ):
        for field in optional:
            _set_text(schemas[name]["properties"][field], text)


def _identifier(max_length: int) -> dict[str, Any]:
    """A required text: not blank, at most `max_length` characters (after trimming)."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": r"\S"}


def _set_text(schema: dict[str, Any], rules: dict[str, Any]) -> None:
    _branch(schema, "string").update(rules)


def _set_object(schema: dict[str, Any], max_keys: int) -> None:
    _branch(schema, "object")["maxProperties"] = max_keys


def _branch(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The `anyOf` branch of type `kind` of an optional field (`T | None`), or
    `schema` itself when it is not a union."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == kind:
            return option  # type: ignore[no-any-return]
    raise KeyError(f"no {kind} in {schema}")

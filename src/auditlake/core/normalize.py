"""Producer input -> canonical events, with every limit enforced.

Pure: bytes and values in, events or a list of problems out. A batch is
all-or-nothing, so every problem of every event is collected before failing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from auditlake.core.event import (
    TENANT_PATTERN,
    Actor,
    BatchInput,
    Context,
    ErrorInfo,
    Event,
    EventInput,
    StoredEvent,
    Target,
    to_micros,
)
from auditlake.core.ids import idempotent_id, uuid7
from auditlake.errors import Forbidden, InvalidInput, MalformedInput, PayloadTooLarge

_encode = msgspec.json.encode
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"field `(?P<name>[^`]+)`")
_CONTAINERS = (dict, list)
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Size and count limits for accepted input; all configurable."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024
    max_metadata_bytes: int = 64 * 1024
    max_metadata_keys: int = 50
    max_metadata_depth: int = 32
    max_batch_events: int = 1000
    max_targets: int = 100
    max_string_length: int = 1024
    max_id_length: int = 256


class Origin(msgspec.Struct, frozen=True):
    """Who submitted a request, and how: everything the body may not set."""

    tenant: str
    caller: str
    source: str
    received_at: datetime
    may_set_tenant: bool = False
    idempotency_key: str | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """One reason an event was rejected; `index` is set for batches."""

    field: str
    message: str
    index: int | None = None


def parse_event(body: bytes, limits: Limits) -> EventInput:
    """Decode one event body, or raise a 400/413/422 naming the problem."""
    _check_size(body, limits.max_event_bytes)
    try:
        return msgspec.json.decode(body, type=EventInput)
    except msgspec.ValidationError as exc:
        _raise_if_malformed(body)
        raise _invalid("the event is invalid", [_problem_from(exc)]) from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None


def parse_batch(body: bytes, limits: Limits) -> list[EventInput]:
    """Decode a batch body; on any schema error, report every event's problems."""
    _check_size(body, limits.max_body_bytes)
    try:
        events = msgspec.json.decode(body, type=BatchInput).events
    except msgspec.ValidationError:
        events = _parse_batch_slowly(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None
    if len(events) > limits.max_batch_events:
        raise _invalid(
            f"a batch holds at most {limits.max_batch_events} events, got {len(events)}",
            [Problem("events", f"at most {limits.max_batch_events} events")],
        )
    if not events:
        raise _invalid("a batch needs at least one event", [Problem("events", "empty")])
    return events


def normalize(inputs: list[EventInput], origin: Origin, limits: Limits) -> list[StoredEvent]:
    """Map inputs to stored events, or raise InvalidInput listing every problem."""
    batch = len(inputs) > 1
    problems: list[Problem] = []
    stored: list[StoredEvent] = []
    for index, item in enumerate(inputs):
        found: list[Problem] = []
        event = _normalize_one(item, index, origin, limits, found)
        if found:
            for problem in found:
                problem.index = index if batch else None
            problems.extend(found)
            continue
        body = _encode(event)
        if len(body) > limits.max_event_bytes:
            message = f"the event is {len(body)} bytes, over {limits.max_event_bytes}"
            problems.append(Problem("", message, index if batch else None))
            continue
        occurred = to_micros(event.occurred_at)
        stored.append(StoredEvent(event, body, occurred, to_micros(event.received_at)))
    if problems:
        noun = "batch" if batch else "event"
        raise _invalid(f"the {noun} is invalid", problems)
    return stored


def _normalize_one(
    item: EventInput, index: int, origin: Origin, limits: Limits, found: list[Problem]
) -> Event:
    tenant = origin.tenant
    if item.tenant is not None and item.tenant != tenant:
        if not origin.may_set_tenant:
            raise Forbidden("this key may only write to its own tenant", {"tenant": item.tenant})
        tenant = item.tenant
        if not TENANT_PATTERN.match(tenant):
            found.append(Problem("tenant", "1-128 letters, digits, '.', '_', ':' or '-'"))
    action = _text(item.action, "action", limits.max_id_length, found, required=True)
    event_id = _event_id(item.id, index, origin, limits, found)
    occurred = _occurred_at(item, origin.received_at, found)
    if len(item.targets) > limits.max_targets:
        found.append(Problem("targets", f"at most {limits.max_targets} targets"))
    if item.version < 1:
        found.append(Problem("version", "must be 1 or more"))
    metadata = item.metadata or {}
    _check_metadata(metadata, "metadata", limits, found)
    outcome = item.outcome or ("failure" if item.error is not None else "success")
    return Event(
        id=event_id,
        tenant=tenant,
        action=action,
        occurred_at=occurred,
        received_at=origin.received_at,
        source=origin.source,
        caller=origin.caller,
        outcome=outcome,
        version=item.version,
        actor=_actor(item.actor, limits, found),
        targets=[_target(t, i, limits, found) for i, t in enumerate(item.targets)],
        context=_context(item.context, limits, found),
        error=_error(item.error, limits, found),
        metadata=metadata,
    )


def _event_id(
    given: str | None, index: int, origin: Origin, limits: Limits, found: list[Problem]
) -> str:
    if given is not None:
        return _text(given, "id", limits.max_id_length, found, required=True)
    if origin.idempotency_key is not None:
        return idempotent_id(origin.idempotency_key, index)
    return uuid7()


def _occurred_at(item: EventInput, received_at: datetime, found: list[Problem]) -> datetime:
    if item.occurred_at is not None and item.timestamp is not None:
        found.append(Problem("timestamp", "give occurred_at or timestamp, not both"))
    if item.timestamp is not None:
        if not 0 <= item.timestamp <= MAX_TIMESTAMP_MS:
            found.append(Problem("timestamp", "must be epoch milliseconds from 1970 to 9999"))
            return received_at
        return datetime.fromtimestamp(item.timestamp / 1000, UTC)
    if item.occurred_at is None:
        return received_at
    if item.occurred_at.tzinfo is None:  # no offset given: read as UTC
        return item.occurred_at.replace(tzinfo=UTC)
    moment = item.occurred_at.astimezone(UTC)
    if moment.year < 1970:
        found.append(Problem("occurred_at", "must be 1970 or later"))
    return moment


def _text(
    value: str | None, field: str, cap: int, found: list[Problem], *, required: bool = False
) -> str:
    text = (value or "").strip()
    if required and not text:
        found.append(Problem(field, "must not be empty"))
    elif len(text) > cap:
        found.append(Problem(field, f"at most {cap} characters"))
    return text


def _optional(value: str | None, field: str, cap: int, found: list[Problem]) -> str | None:
    if value is None:
        return None
    return _text(value, field, cap, found) or None


def _actor(actor: Actor | None, limits: Limits, found: list[Problem]) -> Actor | None:
    if actor is None:
        return None
    cap = limits.max_string_length
    if actor.metadata is not None:
        _check_metadata(actor.metadata, "actor.metadata", limits, found)
    return Actor(
        id=_text(actor.id, "actor.id", limits.max_id_length, found, required=True),
        type=_optional(actor.type, "actor.type", cap, found),
        name=_optional(actor.name, "actor.name", cap, found),
        email=_optional(actor.email, "actor.email", cap, found),
        ip=_optional(actor.ip, "actor.ip", cap, found),
        metadata=actor.metadata,
    )


def _target(target: Target, i: int, limits: Limits, found: list[Problem]) -> Target:
    cap = limits.max_string_length
    where = f"targets[{i}]"
    if target.metadata is not None:
        _check_metadata(target.metadata, f"{where}.metadata", limits, found)
    return Target(
        id=_text(target.id, f"{where}.id", limits.max_id_length, found, required=True),
        type=_optional(target.type, f"{where}.type", cap, found),
        name=_optional(target.name, f"{where}.name", cap, found),
        metadata=target.metadata,
    )


def _context(context: Context | None, limits: Limits, found: list[Problem]) -> Context | None:
    if context is None:
        return None
    cap = limits.max_string_length
    return Context(
        location=_optional(context.location, "context.location", cap, found),
        ip=_optional(context.ip, "context.ip", cap, found),
        user_agent=_optional(context.user_agent, "context.user_agent", cap, found),
        request_id=_optional(context.request_id, "context.request_id", cap, found),
    )


def _error(error: ErrorInfo | None, limits: Limits, found: list[Problem]) -> ErrorInfo | None:
    if error is None:
        return None
    cap = limits.max_string_length
    return ErrorInfo(
        code=_optional(error.code, "error.code", cap, found),
        message=_optional(error.message, "error.message", cap, found),
    )


def _check_metadata(
    metadata: dict[str, Any], field: str, limits: Limits, found: list[Problem]
) -> None:
    if not metadata:
        return
    if len(metadata) > limits.max_metadata_keys:
        found.append(Problem(field, f"at most {limits.max_metadata_keys} keys"))
    size = len(_encode(metadata))
    if size > limits.max_metadata_bytes:
        found.append(Problem(field, f"{size} bytes serialized, over {limits.max_metadata_bytes}"))
    nested = any(type(value) in _CONTAINERS for value in metadata.values())
    if nested and _depth(metadata) > limits.max_metadata_depth:
        found.append(Problem(field, f"nested deeper than {limits.max_metadata_depth} levels"))


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def _parse_batch_slowly(body: bytes) -> list[EventInput]:
    """Validate each event on its own so the error lists every bad event."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise _invalid(
            'a batch is an object {"events": [...]}', [Problem("events", "must be a list")]
        )
    extra = sorted(set(raw) - {"events"})
    problems = [Problem(name, "unknown field") for name in extra]
    events: list[EventInput] = []
    for index, item in enumerate(raw["events"]):
        try:
            events.append(msgspec.convert(item, EventInput))
        except msgspec.ValidationError as exc:
            problem = _problem_from(exc)
            problem.index = index
            problems.append(problem)
    if problems:
        raise _invalid("the batch is invalid", problems)
    return events


def _problem_from(exc: msgspec.ValidationError) -> Problem:
    """Turn msgspec's message into a field path and a reason."""
    message = str(exc)
    path = ""
    located = _PATH.search(message)
    if located:
        path = located["path"].lstrip(".")
        message = message[: located.start()]
    named = _FIELD.search(message)
    if named:
        path = f"{path}.{named['name']}" if path else named["name"]
    return Problem(path, message)


def _invalid(message: str, problems: list[Problem]) -> InvalidInput:
    return InvalidInput(message, msgspec.to_builtins(problems))


def _raise_if_malformed(body: bytes) -> None:
    try:
        msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None


def _malformed(exc: Exception, body: bytes) -> MalformedInput:
    """400 for bodies that are not JSON at all (as opposed to invalid events)."""
    if isinstance(exc, RecursionError):
        return MalformedInput("the JSON is nested too deeply")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return MalformedInput(f"the body is not UTF-8 (byte {bad.start})")
    return MalformedInput(f"the body is not valid JSON: {exc}")


def _check_size(body: bytes, cap: int) -> None:
    if len(body) > cap:
        raise PayloadTooLarge(f"the body is {len(body)} bytes, over the limit of {cap}")

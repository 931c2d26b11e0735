"""Producer input -> canonical events, with every limit enforced.

Pure: bytes and values in, events or a list of problems out. A batch is
all-or-nothing, so every problem of every event is collected before failing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from auditlake.core.event import (
    Actor,
    BatchInput,
    Context,
    ErrorInfo,
    Event,
    EventInput,
    StoredEvent,
    Target,
    tenant_fault,
    to_micros,
)
from auditlake.core.ids import idempotent_id, uuid7_many
from auditlake.core.strict_json import refuse_duplicate_keys
from auditlake.core.times import TimeFormatError, parse_rfc3339
from auditlake.errors import Forbidden, InvalidInput, MalformedInput, PayloadTooLarge

_encode = msgspec.json.encode
_decode_event = msgspec.json.Decoder(EventInput).decode
_decode_batch = msgspec.json.Decoder(BatchInput).decode
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`\Z")
_FIELD = re.compile(r"field `(?P<name>[^`]+)`")
_CONTAINERS = (dict, list)
_ACTOR_TEXT = ("type", "name", "email", "ip")
_TARGET_TEXT = ("type", "name")
_CONTEXT_TEXT = ("location", "ip", "user_agent", "request_id")
_ERROR_TEXT = ("code", "message")
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# The lake keeps `version` as a 32-bit integer: a larger one would be
# acknowledged and then never archived.
MAX_VERSION = 2**31 - 1


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


class Provenance(msgspec.Struct, frozen=True):
    """Where one event came from, when a source maps it from a vendor format:
    its `source` (instead of the request's) and the original payload (`raw`)."""

    source: str
    raw: Any = None


class Problem(msgspec.Struct, omit_defaults=True):
    """One reason an event was rejected; `index` is set for batches."""

    field: str
    message: str
    index: int | None = None


def parse_event(body: bytes, limits: Limits) -> EventInput:
    """Decode one event body, or raise a 400/413/422 naming the problem."""
    _check_size(body, limits.max_event_bytes)
    try:
        event = _decode_event(body)
    except msgspec.ValidationError as exc:
        _raise_if_malformed(body)
        raise _invalid("the event is invalid", [_problem_from(exc)]) from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None
    refuse_duplicate_keys(body, shape=EventInput)
    return event


def parse_batch(body: bytes, limits: Limits) -> list[EventInput]:
    """Decode a batch body; on any schema error, report every event's problems.

    An empty batch (`{"events": []}`) is no error: it has nothing to store, as
    an empty CloudEvents batch has not (HTTP binding 3.3.2)."""
    _check_size(body, limits.max_body_bytes)
    try:
        events = _decode_batch(body).events
    except msgspec.ValidationError:
        events = _parse_batch_slowly(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None
    else:
        refuse_duplicate_keys(body, shape=BatchInput)
    if len(events) > limits.max_batch_events:
        raise _invalid(
            f"a batch holds at most {limits.max_batch_events} events, got {len(events)}",
            [Problem("events", f"at most {limits.max_batch_events} events")],
        )
    return events


def normalize(
    inputs: list[EventInput],
    origin: Origin,
    limits: Limits,
    provenance: Sequence[Provenance] | None = None,
) -> list[StoredEvent]:
    """Map inputs to stored events, or raise InvalidInput listing every problem.

    `provenance`, if given, has one entry per input."""
    batch = len(inputs) > 1
    problems: list[Problem] = []
    stored: list[StoredEvent] = []
    received_us = to_micros(origin.received_at)
    unnamed = 0 if origin.idempotency_key is not None else sum(i.id is None for i in inputs)
    new_ids = iter(uuid7_many(unnamed))
    for index, item in enumerate(inputs):
        found: list[Problem] = []
        event = _normalize_one(item, index, origin, limits, found, new_ids)
        if provenance is not None:
            event = msgspec.structs.replace(
                event, source=provenance[index].source, raw=provenance[index].raw
            )
        if found:
            for problem in found:
                problem.index = index if batch else None
            problems.extend(found)
            continue
        body = _encode(event)
        too_large = _check_sizes(event, body, limits)
        if too_large:
            for problem in too_large:
                problem.index = index if batch else None
            problems.extend(too_large)
            continue
        occurred = event.occurred_at
        occurred_us = received_us if occurred is origin.received_at else to_micros(occurred)
        new_id = item.id is None and origin.idempotency_key is None
        stored.append(StoredEvent(event, body, occurred_us, received_us, new_id))
    if problems:
        noun = "batch" if batch else "event"
        raise _invalid(f"the {noun} is invalid", problems)
    return stored


def _normalize_one(
    item: EventInput,
    index: int,
    origin: Origin,
    limits: Limits,
    found: list[Problem],
    new_ids: Iterator[str],
) -> Event:
    tenant = origin.tenant
    if item.tenant is not None and item.tenant != tenant:
        if not origin.may_set_tenant:
            raise Forbidden("this key may only write to its own tenant", [{"field": "tenant"}])
        tenant = item.tenant
        if (fault := tenant_fault(tenant)) is not None:
            found.append(Problem("tenant", fault))
    action = _text(item.action, "action", limits.max_id_length, found, required=True)
    event_id = _event_id(item.id, index, origin, limits, found, new_ids)
    occurred = _occurred_at(item, origin.received_at, found)
    if len(item.targets) > limits.max_targets:
        found.append(Problem("targets", f"at most {limits.max_targets} targets"))
    version = _whole(item.version, "version", found)
    if not 1 <= version <= MAX_VERSION:
        found.append(Problem("version", f"must be from 1 to {MAX_VERSION}"))
    metadata = item.metadata or {}
    if metadata:
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
        version=version,
        actor=_actor(item.actor, limits, found),
        targets=[_target(t, i, limits, found) for i, t in enumerate(item.targets)],
        context=_context(item.context, limits, found),
        error=_error(item.error, limits, found),
        metadata=metadata,
    )


def _event_id(
    given: str | None,
    index: int,
    origin: Origin,
    limits: Limits,
    found: list[Problem],
    new_ids: Iterator[str],
) -> str:
    if given is not None:
        return _text(given, "id", limits.max_id_length, found, required=True)
    if origin.idempotency_key is not None:
        return idempotent_id(origin.idempotency_key, index)
    return next(new_ids)


def _occurred_at(item: EventInput, received_at: datetime, found: list[Problem]) -> datetime:
    if item.occurred_at is not None and item.timestamp is not None:
        found.append(Problem("timestamp", "give occurred_at or timestamp, not both"))
    if item.timestamp is not None:
        timestamp = _whole(item.timestamp, "timestamp", found)
        if not 0 <= timestamp <= MAX_TIMESTAMP_MS:
            found.append(Problem("timestamp", "must be epoch milliseconds from 1970 to 9999"))
            return received_at
        return datetime.fromtimestamp(timestamp / 1000, UTC)
    if item.occurred_at is None:
        return received_at
    try:  # RFC 3339 with an offset: without one, when it happened is a guess
        moment = parse_rfc3339(item.occurred_at)
    except TimeFormatError as exc:
        found.append(Problem("occurred_at", str(exc)))
        return received_at
    if moment.year < 1970:
        found.append(Problem("occurred_at", "must be between 1970 and 9999 in UTC"))
    return moment


def _whole(value: int | float, field: str, found: list[Problem]) -> int:
    """An integer field's value: `3.0` is the integer 3 (JSON has one number
    type); another fraction is a problem."""
    if type(value) is int:  # nearly always
        return value
    if isinstance(value, float) and not value.is_integer():
        found.append(Problem(field, "must be a whole number"))
    return int(value)


def _text(
    value: str | None, field: str, cap: int, found: list[Problem], *, required: bool = False
) -> str:
    text = (value or "").strip()
    if required and not text:
        found.append(Problem(field, "must not be empty"))
    elif len(text) > cap:
        found.append(Problem(field, f"at most {cap} characters"))
    return text


def _trim(obj: Any, where: str, names: tuple[str, ...], cap: int, found: list[Problem]) -> None:
    """Trim the optional text fields `names` of a freshly decoded struct in place
    (blank becomes None), noting any over `cap` characters."""
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        text = value.strip()
        if len(text) > cap:
            found.append(Problem(f"{where}.{name}", f"at most {cap} characters"))
        if text is not value:  # str.strip() returns the string itself when unchanged
            setattr(obj, name, text or None)


def _actor(actor: Actor | None, limits: Limits, found: list[Problem]) -> Actor | None:
    if actor is not None:
        actor.id = _text(actor.id, "actor.id", limits.max_id_length, found, required=True)
        _trim(actor, "actor", _ACTOR_TEXT, limits.max_string_length, found)
        if actor.metadata is not None:
            _check_metadata(actor.metadata, "actor.metadata", limits, found)
    return actor


def _target(target: Target, i: int, limits: Limits, found: list[Problem]) -> Target:
    where = f"targets[{i}]"
    target.id = _text(target.id, f"{where}.id", limits.max_id_length, found, required=True)
    _trim(target, where, _TARGET_TEXT, limits.max_string_length, found)
    if target.metadata is not None:
        _check_metadata(target.metadata, f"{where}.metadata", limits, found)
    return target


# An empty `context` or `error` object says nothing: it is kept as null, so
# every stored event has one form (and the lake's flat columns give it back).
def _context(context: Context | None, limits: Limits, found: list[Problem]) -> Context | None:
    if context is None:
        return None
    _trim(context, "context", _CONTEXT_TEXT, limits.max_string_length, found)
    return context if _any_set(context) else None


def _error(error: ErrorInfo | None, limits: Limits, found: list[Problem]) -> ErrorInfo | None:
    if error is None:
        return None
    _trim(error, "error", _ERROR_TEXT, limits.max_string_length, found)
    return error if _any_set(error) else None


def _any_set(struct: Context | ErrorInfo) -> bool:
    """Whether some field of `struct` is set (all its fields are optional text)."""
    values = msgspec.structs.astuple(struct)
    return values.count(None) < len(values)


def _check_metadata(
    metadata: dict[str, Any], field: str, limits: Limits, found: list[Problem]
) -> None:
    """Key count and depth; the size is checked on the encoded event (`_check_sizes`)."""
    if len(metadata) > limits.max_metadata_keys:
        found.append(Problem(field, f"at most {limits.max_metadata_keys} keys"))
    nested = any(type(value) in _CONTAINERS for value in metadata.values())
    if nested and _depth(metadata) > limits.max_metadata_depth:
        found.append(Problem(field, f"nested deeper than {limits.max_metadata_depth} levels"))


def _check_sizes(event: Event, body: bytes, limits: Limits) -> list[Problem]:
    """Size limits of the encoded event and of each metadata object in it."""
    if len(body) > limits.max_event_bytes:
        return [Problem("", f"the event is {len(body)} bytes, over {limits.max_event_bytes}")]
    if len(body) <= limits.max_metadata_bytes:  # no part can be larger than the whole
        return []
    cap = limits.max_metadata_bytes
    parts: list[tuple[str, dict[str, Any] | None]] = [("metadata", event.metadata)]
    if event.actor is not None:
        parts.append(("actor.metadata", event.actor.metadata))
    parts += [(f"targets[{i}].metadata", t.metadata) for i, t in enumerate(event.targets)]
    sizes = [(field, len(_encode(value))) for field, value in parts if value]
    return [Problem(f, f"{n} bytes serialized, over {cap}") for f, n in sizes if n > cap]


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
    refuse_duplicate_keys(body, raw)  # before the schema: an ambiguous body has none
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        missing = not isinstance(raw, dict) or "events" not in raw
        problem = Problem("events", "is missing" if missing else "must be a list")
        raise _invalid('a batch is an object {"events": [...]}', [problem])
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
    """400 for a body that is not JSON or names a key twice in one object."""
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _malformed(exc, body) from None
    refuse_duplicate_keys(body, decoded)


def _malformed(exc: Exception, body: bytes) -> MalformedInput:
    """400 for bodies that are not JSON at all (as opposed to invalid events)."""
    if isinstance(exc, RecursionError):
        return MalformedInput("the JSON is nested too deeply")
    if not body.strip():
        return MalformedInput("the body is empty: send a JSON object")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return MalformedInput(f"the body is not UTF-8 (byte {bad.start})")
    return MalformedInput(f"the body is not valid JSON: {exc}")


def _check_size(body: bytes, cap: int) -> None:
    if len(body) > cap:
        raise PayloadTooLarge(f"the body is {len(body)} bytes, over the limit of {cap}", cap)

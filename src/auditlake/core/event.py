"""The canonical event: the one record every source maps its input to.

Field names follow the WorkOS audit-log event where they overlap. `EventInput`
is what a producer may send; `Event` is what auditlake keeps and returns.

The structs are trees of JSON values that never form reference cycles, so
they opt out of garbage-collector tracking (`gc=False`): at tens of thousands
of events per second, tracking them made collections a large share of ingest.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec

from auditlake.errors import AuditlakeError, InvalidInput

Outcome = Literal["success", "failure"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Use with `fullmatch` (or `is_tenant`): `$` alone would let a trailing newline
# through, and `\A...\Z` keeps even a stray `.match` whole. ASCII only, so no
# lookalike letters.
TENANT_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z", re.ASCII)
TENANT_RULE = "1-128 ASCII letters, digits, '.', '_', ':' or '-', starting with a letter or digit"


class Actor(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Who did it."""

    id: str
    type: str | None = None
    name: str | None = None
    email: str | None = None
    ip: str | None = None
    metadata: dict[str, Any] | None = None


class Target(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """What it was done to."""

    id: str
    type: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None


class Context(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Where the request came from. WorkOS puts the client IP in `location`."""

    location: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


class ErrorInfo(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Why a failed action failed."""

    code: str | None = None
    message: str | None = None


class EventInput(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event as a producer sends it (WorkOS or openstatus shape).

    `occurred_at` is RFC 3339 text as sent: normalization reads it with the
    one parser every timestamp input shares (`core.times.parse_rfc3339`), not
    msgspec's, which refuses a leap second and rounds a 7-digit fraction up
    into the next second. `timestamp` is the openstatus form of `occurred_at`
    (epoch milliseconds). `tenant` is honoured only for admin keys.
    `timestamp` and `version` also decode from a JSON number with a zero
    fraction (`3.0`): JSON has one number type and JSON Schema counts it as
    the integer 3; normalization refuses any other fraction.
    """

    action: str
    id: str | None = None
    occurred_at: str | None = None
    timestamp: int | float | None = None
    actor: Actor | None = None
    targets: list[Target] = []
    context: Context | None = None
    outcome: Outcome | None = None
    error: ErrorInfo | None = None
    version: int | float = 1
    metadata: dict[str, Any] | None = None
    tenant: str | None = None


class BatchInput(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The body of `POST /v1/events/batch`."""

    events: list[EventInput]


class Event(msgspec.Struct, frozen=True, gc=False):
    """An accepted event, as stored and returned."""

    id: str
    tenant: str
    action: str
    occurred_at: datetime
    received_at: datetime
    source: str
    caller: str
    outcome: Outcome = "success"
    version: int = 1
    actor: Actor | None = None
    targets: list[Target] = []
    context: Context | None = None
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = {}
    raw: Any = None


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """An event with the encoded bytes and index values a backend writes.

    Normalization computes these once, so the group-commit writer does no
    per-event Python work beyond binding parameters.
    """

    event: Event
    body: bytes
    occurred_us: int
    received_us: int
    # The id was generated here (UUIDv7), so no stored event can have it yet
    # and a journal may skip its duplicate lookup.
    new_id: bool = False


def is_tenant(name: str) -> bool:
    """Whether `name` is a tenant name: 1-128 ASCII letters, digits, `.`, `_`,
    `:` or `-`, starting with a letter or digit; nothing before or after.
    The one tenant check: every other place calls this, or the two below."""
    return TENANT_PATTERN.fullmatch(name) is not None


def tenant_fault(name: str) -> str | None:
    """None for a tenant name (`is_tenant`); else why not, quoting `name` with
    `repr` (so `'acme\\n'` shows its newline) and stating the whole rule."""
    if is_tenant(name):
        return None
    return f"{name!r} is not a tenant name; a tenant name is {TENANT_RULE}"


def check_tenant(name: str, fault: type[AuditlakeError] = InvalidInput) -> str:
    """`name` if it is a tenant name; else `fault` (InvalidInput, 422, for a
    body or a command line; MalformedInput, 400, for a query parameter) with
    the message of `tenant_fault` and the detail `{"field": "tenant", ...}`."""
    message = tenant_fault(name)
    if message is None:
        return name
    raise fault(f"tenant {message}", [{"field": "tenant", "message": message}])


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch for an aware datetime."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime for microseconds since the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


# Sorted object keys: JSON objects are unordered, so `{"a": 1, "b": 2}` and
# `{"b": 2, "a": 1}` are the same content.
_canonical = msgspec.json.Encoder(order="deterministic")
FINGERPRINT_BYTES = 16


def fingerprint(event: Event) -> bytes:
    """A 16-byte BLAKE2b digest of what the sender said, to tell an identical
    re-send (a duplicate) from a different event under a stored id (a conflict).

    It covers every field the sender chose, after normalization: `action`,
    `occurred_at` (when given), `source`, `outcome`, `version`, `actor`,
    `targets`, `context`, `error`, `metadata` and `raw`. It leaves out what
    the service fills in and a retry may change: `received_at`, `caller`, and
    `occurred_at` when it was not given (then it equals `received_at`, the
    receipt time). `id` and `tenant` are the key the digest is stored under.
    The same for an event decoded from its stored body, so stored rows without
    a digest get theirs on demand.
    """
    given = event.occurred_at != event.received_at
    content = (
        event.action,
        to_micros(event.occurred_at) if given else None,
        event.source,
        event.outcome,
        event.version,
        event.actor,
        event.targets,
        event.context,
        event.error,
        event.metadata,
        event.raw,
    )
    return hashlib.blake2b(_canonical.encode(content), digest_size=FINGERPRINT_BYTES).digest()


def search_text(event: Event) -> str:
    """The words `q` searches: actor and target ids, names and emails, the error,
    and metadata values.

    The event id, action and types are left out: each has an exact filter (or
    `GET /v1/events/{id}`), and their words were about 40% of what the text
    index had to store for every event.
    """
    words: list[str] = []
    if event.actor is not None:
        actor = event.actor
        words += [w for w in (actor.id, actor.name, actor.email) if w]
        if actor.metadata:
            _collect_values(actor.metadata, words)
    for target in event.targets:
        words += [w for w in (target.id, target.name) if w]
        if target.metadata:
            _collect_values(target.metadata, words)
    if event.error is not None:
        words += [w for w in (event.error.code, event.error.message) if w]
    if event.metadata:
        _collect_values(event.metadata, words)
    return " ".join(words)


def _collect_values(value: Any, words: list[str]) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            words.append(node)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            words.append(str(node))

"""The search model: filters, ordering, limits and the opaque page cursor.

Pure. Both the HTTP API and the CLI parse their parameters here, so a filter
means the same thing everywhere and every backend receives a checked `Query`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal

import msgspec

from auditlake.core.event import EPOCH, Event, from_micros, search_text, to_micros
from auditlake.core.times import ACCEPTED_FORMS, TimeFormatError, is_relative, parse_moment
from auditlake.core.words import search_words
from auditlake.errors import InvalidInput, MalformedInput

Order = Literal["asc", "desc"]
ORDERS: dict[str, Order] = {"asc": "asc", "desc": "desc"}
FILTER_NAMES = (
    "action",
    "actor_id",
    "actor_type",
    "target_id",
    "target_type",
    "outcome",
    "source",
    "since",
    "until",
    "q",
)
PAGING_NAMES = ("order", "limit", "cursor")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# The cost of one search grows with the words of `q` (each is a prefix scan
# of the text index): a search may have at most this many words, in at most
# this many characters. `WORD` (core.words) says what a word is.
MAX_Q_WORDS = 8
MAX_Q_CHARS = 256


class Filters(msgspec.Struct, frozen=True):
    """What to match. `action_prefix` comes from an `action` ending in `*`."""

    action: str | None = None
    action_prefix: str | None = None
    actor_id: str | None = None
    actor_type: str | None = None
    target_id: str | None = None
    target_type: str | None = None
    outcome: str | None = None
    source: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    q: str | None = None

    def equalities(self) -> list[tuple[str, str]]:
        """The (column, value) pairs a stored event's columns must equal,
        for the filters given (column names as both stores call them)."""
        pairs = (
            ("action", self.action),
            ("actor_id", self.actor_id),
            ("actor_type", self.actor_type),
            ("outcome", self.outcome),
            ("source", self.source),
        )
        return [(column, value) for column, value in pairs if value is not None]

    def action_range(self) -> tuple[str, str] | None:
        """`action_prefix` as a range [low, high) of code points, which an
        index on action serves where LIKE would not."""
        if self.action_prefix is None:
            return None
        return self.action_prefix, self.action_prefix + "\U0010ffff"


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where a page ended: the sort key of its last event.

    In the hot store that is (occurred_us, seq). Where a search also reads the
    lake (older than the retention horizon, fixed for all pages of a search),
    a position in the lake part names the event id instead of a seq.
    """

    occurred_us: int
    seq: int
    lake_id: str | None = None
    horizon_us: int | None = None


class Query(msgspec.Struct, frozen=True):
    """A checked search: one tenant, filters, order, page size, resume point."""

    tenant: str
    filters: Filters = Filters()
    order: Order = "desc"
    limit: int = DEFAULT_LIMIT
    after: Position | None = None
    # The moment a relative bound (`since=24h`) was counted back from, when
    # there is one; the cursor keeps it, so every page covers the same window.
    now_us: int | None = None

    def fingerprint(self) -> str:
        """Identifies tenant + filters + order, so a cursor cannot be reused elsewhere."""
        key = msgspec.json.encode([self.tenant, self.filters, self.order])
        return hashlib.sha256(key).hexdigest()[:16]


class _CursorBody(msgspec.Struct, array_like=True, omit_defaults=True):
    fingerprint: str
    position: Position
    now_us: int | None = None


def parse_query(
    tenant: str,
    params: Mapping[str, str],
    *,
    max_limit: int = MAX_LIMIT,
    now: datetime | None = None,
) -> Query:
    """Build a Query from string parameters (query string or CLI flags).

    `since` / `until` take the forms of `core.times.parse_moment`; `now` (aware)
    is what a duration counts back from, and is needed only for one. Resuming
    from a cursor counts back from the cursor's first page's `now` instead.
    Every fault of a parameter is a 400 (MalformedInput) naming it: an
    unknown name, an empty or blank value (absent and empty would otherwise
    mean the same), a value out of its set or range, a cursor of another
    search; a bound in no accepted form also names the accepted forms.
    """
    check_names(params, (*FILTER_NAMES, *PAGING_NAMES, "tenant"))
    for name, value in params.items():
        _refuse_blank(name, value)
    action = _clean(params.get("action"))
    action_prefix = None
    if action is not None and action.endswith("*"):
        action_prefix = action[:-1] or None
        action = None
    outcome = _clean(params.get("outcome"))
    if outcome not in (None, "success", "failure"):
        raise MalformedInput("outcome must be success or failure", [invalid_param("outcome")])
    cursor = params.get("cursor")
    resumed = _cursor_body(cursor) if cursor else None
    now_us = _pinned_now(params, resumed, now)
    filters = Filters(
        action=action,
        action_prefix=action_prefix,
        actor_id=_clean(params.get("actor_id")),
        actor_type=_clean(params.get("actor_type")),
        target_id=_clean(params.get("target_id")),
        target_type=_clean(params.get("target_type")),
        outcome=outcome,
        source=_clean(params.get("source")),
        since_us=_moment(params.get("since"), "since", now_us),
        until_us=_moment(params.get("until"), "until", now_us),
        q=_search_words(params.get("q")),
    )
    order = params.get("order", "desc")
    if order not in ORDERS:
        raise MalformedInput("order must be asc or desc", [invalid_param("order")])
    limit = _limit(params.get("limit"), max_limit)
    query = Query(tenant, filters, ORDERS[order], limit, now_us=now_us)
    if resumed is not None:
        query = msgspec.structs.replace(query, after=_position(resumed, query))
    return query


def encode_cursor(query: Query, position: Position) -> str:
    """The opaque cursor that resumes `query` after `position`."""
    raw = msgspec.json.encode(_CursorBody(query.fingerprint(), position, query.now_us))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: Query) -> Position:
    """The position inside a cursor made for this same query, or a 400."""
    return _position(_cursor_body(cursor), query)


def _cursor_body(cursor: str) -> _CursorBody:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=_CursorBody)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise MalformedInput("the cursor is not valid", [invalid_param("cursor")]) from None


def _position(body: _CursorBody, query: Query) -> Position:
    if body.fingerprint != query.fingerprint():
        raise MalformedInput(
            "the cursor belongs to a search with other filters or order", [invalid_param("cursor")]
        )
    return body.position


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _pinned_now(
    params: Mapping[str, str], resumed: _CursorBody | None, now: datetime | None
) -> int | None:
    """What relative bounds count back from: the first page's now, else `now`;
    None when no bound is relative (so the cursor stays as it was)."""
    if not any(is_relative(_clean(params.get(name)) or "") for name in ("since", "until")):
        return None
    if resumed is not None and resumed.now_us is not None:
        return resumed.now_us
    if now is None:
        raise TypeError("parse_query needs now= for a relative since/until")
    return to_micros(now)


def _search_words(value: str | None) -> str | None:
    """`q` as given, once it is within the caps (400 naming the cap if not)."""
    text = _clean(value)
    if text is None:
        return None
    if len(text) > MAX_Q_CHARS:
        raise MalformedInput(
            f"q has {len(text)} characters; a search may have at most {MAX_Q_CHARS} characters",
            [{"field": "q", "message": f"at most {MAX_Q_CHARS} characters"}],
        )
    words = len(search_words(text))
    if words > MAX_Q_WORDS:
        raise MalformedInput(
            f"q has {words} words; a search may have at most {MAX_Q_WORDS} words",
            [{"field": "q", "message": f"at most {MAX_Q_WORDS} words"}],
        )
    return text


def _moment(value: str | None, field: str, now_us: int | None) -> int | None:
    text = _clean(value)
    if text is None:
        return None
    # EPOCH is never read: only a duration reads now, and then now_us is set.
    now = EPOCH if now_us is None else from_micros(now_us)
    return to_micros(parse_time(text, field, now))


def parse_time(text: str, field: str, now: datetime) -> datetime:
    """A time filter (`since`, `until`, CLI flags) as an aware UTC datetime: an
    RFC 3339 time, a date (midnight UTC) or a duration before `now` (`24h`),
    as `core.times.parse_moment` reads them; or a 400 naming `field` and the
    accepted forms."""
    try:
        return parse_moment(text.strip(), now)
    except TimeFormatError as exc:
        message = f"{field}: {exc}"
        raise MalformedInput(message, [{"field": field, "message": str(exc)}]) from None


def _limit(value: str | None, max_limit: int) -> int:
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise MalformedInput("limit must be a whole number", [invalid_param("limit")]) from None
    if not 1 <= limit <= max_limit:
        raise MalformedInput(f"limit must be between 1 and {max_limit}", [invalid_param("limit")])
    return limit


def single_values(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A query string's `(name, value)` pairs as one value per name.

    A parameter given twice (`since=1s&since=1000d`) is a 400 naming it, as
    a JSON key given twice is: which value was meant would be a guess. No
    parameter is repeatable. An empty or blank value is a 400 too.
    """
    values: dict[str, str] = {}
    for name, value in items:
        if name in values:
            raise MalformedInput(
                f"the query parameter {name} is given more than once; give it once",
                [{"field": name, "message": "given more than once"}],
            )
        _refuse_blank(name, value)
        values[name] = value
    return values


def check_names(params: Mapping[str, str], allowed: Iterable[str]) -> None:
    """A 400 naming each parameter of `params` not among `allowed`."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise MalformedInput(
            f"unknown query parameter(s): {', '.join(unknown)}",
            [{"field": name, "message": "unknown parameter"} for name in unknown],
        )


def _refuse_blank(name: str, value: str) -> None:
    """A 400 for an empty or blank value: leave the parameter out instead."""
    if value.strip():
        return
    forms = f"; accepted: {ACCEPTED_FORMS}" if name in ("since", "until") else ""
    raise MalformedInput(
        f"the query parameter {name} is empty; leave it out or give a value{forms}",
        [{"field": name, "message": f"empty{forms}"}],
    )


# The CPU time one search may take in a backend before it is stopped with
# `too_costly()`: searches share the service's cores with ingest.
SEARCH_CPU_SECONDS = 1.0


def too_costly(cpu_seconds: float) -> InvalidInput:
    """The 422 for a search stopped after `cpu_seconds` of work: it says so,
    and how to narrow the search."""
    return InvalidInput(
        f"the search was stopped after {cpu_seconds:g} s of work, the most one search may take;"
        " narrow it with since/until, action, actor_id or target_id, or longer q words",
        [{"field": "search", "message": f"too costly: over {cpu_seconds:g} s of work"}],
    )


def invalid_param(field: str) -> dict[str, str]:
    """The error detail for a query parameter with an invalid value."""
    return {"field": field, "message": "invalid value"}


def matches(event: Event, occurred_us: int, filters: Filters) -> bool:
    """Whether `event` passes `filters` (the reference semantics every backend
    implements; `q` words must each start a word of `search_text`, both sides
    folded as `core.words.fold` says: canonically and compatibly equivalent
    strings match, whatever their case and marks)."""
    actor = event.actor
    checks = (
        (filters.action, event.action),
        (filters.actor_id, actor.id if actor else None),
        (filters.actor_type, actor.type if actor else None),
        (filters.outcome, event.outcome),
        (filters.source, event.source),
    )
    if any(wanted is not None and wanted != value for wanted, value in checks):
        return False
    prefix, since, until = filters.action_prefix, filters.since_us, filters.until_us
    return (
        (prefix is None or event.action.startswith(prefix))
        and (since is None or occurred_us >= since)
        and (until is None or occurred_us < until)
        and (filters.target_id is None or any(t.id == filters.target_id for t in event.targets))
        and (
            filters.target_type is None or any(t.type == filters.target_type for t in event.targets)
        )
        and (filters.q is None or _has_words(search_text(event), filters.q))
    )


def _has_words(text: str, q: str) -> bool:
    words = set(search_words(text))
    wanted = search_words(q)
    return bool(wanted) and all(any(w.startswith(x) for w in words) for x in wanted)

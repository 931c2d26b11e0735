"""Exactly once by `(tenant, id)`, and no silent loss of a different event.

Every journal backend judges a submitted request the same way, here: an
event whose key is new is written; one whose key is stored (or written
earlier in the same commit) with the same fingerprint (`core.event.
fingerprint`: the caller-supplied content) is a `duplicate`; one with another
fingerprint is a `conflict`. A request with a conflict is refused whole
(`Conflict`, HTTP 409) unless it was submitted `keep_first` (pollers,
rehydrate): then the stored copy stays and the item is reported `conflict`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from auditlake.core.event import Event, StoredEvent, fingerprint
from auditlake.errors import Conflict
from auditlake.journal.base import AppendResult

Key = tuple[str, str]
_decode_event = msgspec.json.Decoder(Event).decode


class Judged(msgspec.Struct):
    """The verdict on one request: its results, the positions of the events to
    write, or the conflict that refuses it (then nothing is written)."""

    results: list[AppendResult]
    written: list[int]
    conflict: Conflict | None = None


def fingerprints(events: list[StoredEvent]) -> list[bytes | None]:
    """Each event's fingerprint, None for a service-generated id: no event can
    have it yet, so none is needed now (a later send under that id gets the
    stored copy's fingerprint from its body, as for rows written before
    fingerprints existed)."""
    return [None if stored.new_id else fingerprint(stored.event) for stored in events]


def body_fingerprint(body: bytes) -> bytes:
    """The fingerprint of a stored event, from its stored JSON body."""
    return fingerprint(_decode_event(body))


def judge(
    events: list[StoredEvent],
    prints: list[bytes | None],
    known: Callable[[Key], bytes | None],
    *,
    keep_first: bool,
) -> Judged:
    """Judge one request against the stored keys (`known(key)`: the stored
    fingerprint, or None when the key is new). The caller writes the events
    at `written` and makes their keys known to the requests after it."""
    results: list[AppendResult] = []
    written: list[int] = []
    mine: dict[Key, tuple[int, bytes]] = {}  # keys written by this request: position, print
    problems: list[dict[str, Any]] = []
    for index, (stored, print_) in enumerate(zip(events, prints, strict=True)):
        event_id = stored.event.id
        if print_ is None:  # a generated id: new by construction
            written.append(index)
            results.append(AppendResult(event_id, "created"))
            continue
        key = (stored.event.tenant, event_id)
        earlier = mine.get(key)
        first = earlier[1] if earlier is not None else known(key)
        if first is None:
            mine[key] = (index, print_)
            written.append(index)
            results.append(AppendResult(event_id, "created"))
        elif first == print_:
            results.append(AppendResult(event_id, "duplicate"))
        else:
            results.append(AppendResult(event_id, "conflict"))
            problems.append(_problem(event_id, index, earlier[0] if earlier else None))
    if problems and not keep_first:
        return Judged(results, [], _conflict(problems))
    return Judged(results, written)


def _problem(event_id: str, index: int, earlier: int | None) -> dict[str, Any]:
    if earlier is None:
        message = "a different event is already stored under this id"
    else:
        message = f"differs from the event at index {earlier} of this request, which has this id"
    return {"id": event_id, "index": index, "message": message}


def _conflict(problems: list[dict[str, Any]]) -> Conflict:
    ids = ", ".join(repr(p["id"]) for p in problems[:3])
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return Conflict(
        f"id {ids}{more} already names a different event; nothing was stored "
        "(an identical re-send is a duplicate; a different event needs a new id)",
        problems,
    )

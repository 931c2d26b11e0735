"""Exactly once by `(tenant, id)`, and no silent loss of a different event.

Every journal backend judges a submitted request the same way, here: an
event whose key is new is written; one whose key is stored (or written
earlier in the same commit) with the same fingerprint (`core.event.
fingerprint`: the caller-supplied content) is a `duplicate`; one with another
fingerprint is a `conflict`. A request with a conflict is refused whole
(`Conflict`, HTTP 409) unless it was submitted `keep_first` (pollers,
rehydrate): then the stored copy stays and the item is reported `conflict`.

Fingerprints are computed only when a key comes again, never for a new
event: new events are nearly all of ingest, and a fingerprint costs about as
much as encoding the event. The stored side's comes from its body (a backend
may cache it).
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


def body_fingerprint(body: bytes) -> bytes:
    """The fingerprint of a stored event, from its stored JSON body."""
    return fingerprint(_decode_event(body))


def judge(
    events: list[StoredEvent], known: Callable[[Key], bytes | None], *, keep_first: bool
) -> Judged:
    """Judge one request against the stored keys (`known(key)`: the stored
    event's fingerprint, or None when the key is new). The caller writes the
    events at `written` and makes their keys known to the requests after it."""
    results: list[AppendResult] = []
    written: list[int] = []
    mine: dict[Key, int] = {}  # keys this request writes: the position of the event
    problems: list[dict[str, Any]] = []
    for index, stored in enumerate(events):
        event = stored.event
        key = (event.tenant, event.id)
        # A generated id is new by construction: no lookup, no fingerprint.
        earlier = None if stored.new_id else mine.get(key)
        first = None
        if not stored.new_id:
            first = fingerprint(events[earlier].event) if earlier is not None else known(key)
        if first is None:
            mine[key] = index
            written.append(index)
            results.append(AppendResult(event.id, "created"))
        elif first == fingerprint(event):
            results.append(AppendResult(event.id, "duplicate"))
        else:
            results.append(AppendResult(event.id, "conflict"))
            problems.append(_problem(event.id, index, earlier))
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

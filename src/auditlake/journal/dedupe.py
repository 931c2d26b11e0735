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
    if all(stored.new_id for stored in events):  # the common request: nothing to look up
        created = [AppendResult(stored.event.id, "created") for stored in events]
        return Judged(created, list(range(len(events))))
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
    """`{"id", "index", "message"}`, and `other_index` (the earlier item of
    the same request with this id) when the conflict is within the request."""
    if earlier is None:
        return {"id": event_id, "index": index, "message": SEEN_MESSAGE}
    message = in_request_message(earlier)
    return {"id": event_id, "index": index, "message": message, "other_index": earlier}


SEEN_MESSAGE = "a different event is already stored under this id"


def in_request_message(earlier: int) -> str:
    """The detail message of an item whose id an earlier, different item of
    the same request (at `earlier`) has."""
    return f"differs from the item at index {earlier} of this request, which has this id"


def _conflict(problems: list[dict[str, Any]]) -> Conflict:
    """The 409 for a request's conflicts: its message tells an id that names a
    different stored event from two different items of this same request
    sharing an id (nothing stored either way, and nothing stored by it)."""
    stored = [p["id"] for p in problems if "other_index" not in p]
    twice = [p["id"] for p in problems if "other_index" in p]
    parts = []
    if stored:
        parts.append(f"id {_ids(stored)} already names a different stored event")
    if twice:
        parts.append(f"id {_ids(twice)} names two different items of this request")
    return Conflict(
        "; ".join(parts) + "; nothing was stored (an identical re-send is a duplicate; "
        "a different event needs a new id)",
        problems,
    )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in dict.fromkeys(ids[:3]))
    return shown + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")

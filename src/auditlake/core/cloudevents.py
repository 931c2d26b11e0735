"""CloudEvents -> events: the mapping every CloudEvents source shares.

Pure: a CloudEvent is given as its attributes (as the HTTP binding parsed
them, `time` a datetime) and its data (a JSON value, text, bytes or None).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from auditlake.core.event import EventInput, Target
from auditlake.core.ids import derived_id
from auditlake.core.normalize import Provenance
from auditlake.core.patterns import matches_any

SOURCE_PREFIX = "cloudevents:"
MAX_ID = 256  # the default max_id_length of event and target ids
# Attributes of the CloudEvents 1.0 spec; everything else is an extension.
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}
)


class CloudEvent(msgspec.Struct, frozen=True):
    """One received CloudEvent."""

    attributes: dict[str, Any]
    data: Any = None

    @property
    def type(self) -> str:
        """The event type (`type` attribute)."""
        return str(self.attributes["type"])


def type_kept(event_type: str, patterns: Sequence[str]) -> bool:
    """Whether a source that keeps `patterns` (exact, or a prefix ending in
    '*'; none = everything) keeps events of `event_type`."""
    return not patterns or matches_any(patterns, event_type)


def map_cloudevent(event: CloudEvent) -> tuple[EventInput, Provenance]:
    """The event input of a CloudEvent and where it came from.

    action = type, occurred_at = time (receipt time when absent), the id is
    derived from source + id (a redelivery is a duplicate; two producers' equal
    ids never collide), the subject is a target, extensions are metadata, and
    the whole CloudEvent in its structured JSON form is kept as `raw`.
    """
    attributes = event.attributes
    subject = attributes.get("subject")
    extensions = {k: v for k, v in attributes.items() if k not in CORE_ATTRIBUTES}
    item = EventInput(
        action=event.type,
        id=derived_id("cloudevents", str(attributes["source"]), str(attributes["id"])),
        occurred_at=_time_text(attributes.get("time")),
        targets=[Target(id=bounded_id(str(subject)), type="subject")] if subject else [],
        metadata=extensions or None,
    )
    return item, Provenance(SOURCE_PREFIX + str(attributes["source"]), structured_form(event))


def structured_form(event: CloudEvent) -> dict[str, Any]:
    """The CloudEvent as the JSON event format writes it (`data_base64` for bytes)."""
    form: dict[str, Any] = {}
    for name, value in event.attributes.items():
        form[name] = _iso(value) if isinstance(value, datetime) else value
    if isinstance(event.data, bytes | bytearray):
        form["data_base64"] = base64.b64encode(event.data).decode("ascii")
    elif event.data is not None:
        form["data"] = event.data
    return form


def bounded_id(text: str) -> str:
    """`text`, or for one longer than an id may be (MAX_ID) a unique shortening
    of it: a vendor's long names must not make its event invalid."""
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_ID - 17]}~{digest}"


def _time_text(moment: Any) -> str | None:
    """The `time` attribute (a datetime once the binding parsed it) as RFC 3339."""
    return _iso(moment) if isinstance(moment, datetime) else None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.isoformat()
    try:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00; normalization rejects the time
        return moment.isoformat()

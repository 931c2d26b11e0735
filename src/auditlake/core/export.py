"""Export formats, pure: stored event JSON -> NDJSON lines or CSV rows.

CSV cells that a spreadsheet would evaluate as a formula (starting with
=, +, -, @, tab or carriage return) get a leading apostrophe, as OWASP
recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import msgspec

from auditlake.core.event import Event

CSV_COLUMNS = (
    "id",
    "tenant",
    "action",
    "occurred_at",
    "received_at",
    "outcome",
    "source",
    "actor_id",
    "actor_type",
    "actor_name",
    "actor_email",
    "targets",
    "context",
    "error",
    "metadata",
    "version",
    "caller",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_decode_event = msgspec.json.Decoder(Event).decode
_encode = msgspec.json.encode


def ndjson_lines(bodies: Iterable[bytes]) -> bytes:
    """Stored event bodies as NDJSON (one JSON object per line)."""
    return b"".join(body + b"\n" for body in bodies)


def csv_header() -> bytes:
    """The CSV header line."""
    return _csv_text([list(CSV_COLUMNS)])


def csv_rows(bodies: Iterable[bytes]) -> bytes:
    """Stored event bodies as CSV rows, formula-like cells neutralized."""
    return _csv_text([_row(_decode_event(body)) for body in bodies])


def neutralize(cell: str) -> str:
    """A cell a spreadsheet will show as text, never run."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _row(event: Event) -> list[str]:
    actor = event.actor
    values: list[Any] = [
        event.id,
        event.tenant,
        event.action,
        _encode(event.occurred_at).decode().strip('"'),
        _encode(event.received_at).decode().strip('"'),
        event.outcome,
        event.source,
        actor.id if actor else "",
        (actor.type or "") if actor else "",
        (actor.name or "") if actor else "",
        (actor.email or "") if actor else "",
        _json(event.targets) if event.targets else "",
        _json(event.context) if event.context else "",
        _json(event.error) if event.error else "",
        _json(event.metadata) if event.metadata else "",
        str(event.version),
        event.caller,
    ]
    return [neutralize(str(value)) for value in values]


def _json(value: Any) -> str:
    return _encode(value).decode()


def _csv_text(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()

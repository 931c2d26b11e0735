from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from auditlake.core import ids as ids_module
from auditlake.core.event import Actor, Event, Target, from_micros, search_text, to_micros
from auditlake.core.export import csv_header, csv_rows, ndjson_lines, neutralize
from auditlake.core.ids import idempotent_id, uuid7, uuid7_many


def test_uuid7_is_version_7_and_sorts_in_creation_order() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert uuid7(now_ms=10**12) != uuid7(now_ms=10**12)


def test_uuid7_many_continues_the_order_past_the_per_millisecond_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Later tests in this process get ids of the present again.
    monkeypatch.setattr(ids_module, "_last_ms", ids_module._last_ms)
    far_future_ms = 2**47  # newer than any id made so far, so the batch starts a fresh ms
    ids = [uuid7(), *uuid7_many(10_000, now_ms=far_future_ms), uuid7()]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # 10,000 ids overflow the 12-bit counter: the batch borrows the next milliseconds
    assert parsed[1].int >> 80 == far_future_ms
    assert far_future_ms + 2 <= parsed[-2].int >> 80 <= far_future_ms + 4
    assert uuid7_many(0) == []


def test_idempotent_id_is_stable_and_position_dependent() -> None:
    assert idempotent_id("k", 0) == idempotent_id("k", 0)
    assert idempotent_id("k", 0) != idempotent_id("k", 1) != idempotent_id("j", 1)
    assert uuid.UUID(idempotent_id("k")).version == 8


def test_micros_round_trip() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert from_micros(to_micros(moment)) == moment


def _event(**changes: object) -> Event:
    base = Event(
        id="e1",
        tenant="acme",
        action="user.signed_in",
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
        source="api",
        caller="key:x",
    )
    return msgspec.structs.replace(base, **changes)


def test_csv_neutralizes_formulas_and_keeps_control_characters_quoted() -> None:
    evil = _event(
        action='=HYPERLINK("http://x")',
        actor=Actor(id="+1", name="line\nbreak\x1b[31m"),
        metadata={"cmd": "@SUM(A1)"},
    )
    body = csv_header() + csv_rows([msgspec.json.encode(evil)])
    rows = list(csv.reader(io.StringIO(body.decode())))
    header, row = rows[0], rows[1]
    cell = dict(zip(header, row, strict=True))
    assert cell["action"].startswith("'=")
    assert cell["actor_id"] == "'+1"
    assert cell["actor_name"] == "line\nbreak\x1b[31m"
    assert neutralize("-2") == "'-2" and neutralize("ok") == "ok"


def test_ndjson_is_one_event_per_line() -> None:
    bodies = [msgspec.json.encode(_event(id=str(i))) for i in range(3)]
    lines = ndjson_lines(bodies).splitlines()
    assert [msgspec.json.decode(line)["id"] for line in lines] == ["0", "1", "2"]


def test_search_text_covers_names_ids_and_metadata_values() -> None:
    event = _event(
        actor=Actor(id="u1", name="Ada", type="person"),
        targets=[Target(id="repo-9", name="Website", type="repo")],
        metadata={"a": {"b": ["deep", 42]}},
    )
    words = search_text(event).split()
    for word in ("u1", "Ada", "repo-9", "Website", "deep", "42"):
        assert word in words
    # What has an exact filter of its own is not text: the action, the types, the id.
    for word in (event.action, event.id, "person", "repo"):
        assert word not in words

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fixtures import FIXTURES

from auditlake.core.event import Event
from auditlake.core.normalize import Limits, Origin, normalize, parse_batch, parse_event
from auditlake.errors import Forbidden, InvalidInput, MalformedInput, PayloadTooLarge

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ORIGIN = Origin(tenant="acme", caller="key:abc", source="api", received_at=NOW)
LIMITS = Limits()


def one(body: bytes | dict[str, object], origin: Origin = ORIGIN, limits: Limits = LIMITS) -> Event:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return normalize([parse_event(raw, limits)], origin, limits)[0].event


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[dict[str, object]]:
    return list(exc.value.details)


def test_workos_sample_maps_without_translation() -> None:
    event = one((FIXTURES / "workos-event.json").read_bytes())
    assert event.action == "user.signed_in"
    assert event.occurred_at == datetime(2022, 8, 29, 19, 47, 52, 336000, tzinfo=UTC)
    assert event.actor is not None and event.actor.type == "user"
    assert event.targets[0].id == "team_01GBNJD4MKHVKJGEWK42JNMBGS"
    assert event.context is not None and event.context.location == "123.123.123.123"
    assert (event.tenant, event.caller, event.source) == ("acme", "key:abc", "api")
    assert event.received_at == NOW
    assert event.id.split("-")[2].startswith("7")  # UUIDv7


def test_openstatus_sample_maps_without_translation() -> None:
    event = one((FIXTURES / "openstatus-event.json").read_bytes())
    assert event.id == "monitor:1"
    assert event.metadata["statusCode"] == 400
    assert event.occurred_at == NOW  # no timestamp: receipt time


def test_openstatus_epoch_millisecond_timestamp() -> None:
    event = one({"action": "monitor.up", "timestamp": 1_700_000_000_123})
    assert event.occurred_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_strings_are_trimmed_but_inner_characters_kept() -> None:
    event = one({"action": "  user.x \n", "actor": {"id": " u1 ", "name": "a\x00b\x1b[31m"}})
    assert event.action == "user.x"
    assert event.actor is not None
    assert event.actor.id == "u1"
    assert event.actor.name == "a\x00b\x1b[31m"


def test_naive_occurred_at_is_refused_and_offsets_are_converted() -> None:
    with pytest.raises(InvalidInput) as exc:  # more RFC 3339 cases: tests/unit/test_times.py
        one({"action": "a", "occurred_at": "2024-01-01T10:00:00"})
    assert problems(exc)[0]["field"] == "occurred_at"
    moved = one({"action": "a", "occurred_at": "2024-01-01T10:00:00+02:00"}).occurred_at
    assert (moved.hour, moved.tzinfo) == (8, UTC)


@pytest.mark.parametrize("field", ["received_at", "caller", "source", "raw", "bogus"])
def test_unknown_and_service_owned_fields_are_rejected_by_name(field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", field: "x"})
    assert problems(exc)[0]["field"] == field


def test_missing_action_and_wrong_type_name_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        one({"actor": {"id": "u"}})
    assert problems(exc)[0]["field"] == "action"
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "actor": {"id": 5}})
    assert problems(exc)[0]["field"] == "actor.id"


def test_empty_action_is_rejected() -> None:
    with pytest.raises(InvalidInput) as exc:
        one({"action": "   "})
    assert problems(exc) == [{"field": "action", "message": "must not be empty"}]


def test_metadata_limits() -> None:
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "metadata": {f"k{i}": i for i in range(51)}})
    assert "50 keys" in str(problems(exc)[0]["message"])
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "metadata": {"big": "x" * 70_000}})
    assert problems(exc)[0]["field"] == "metadata"
    nested: dict[str, object] = {}
    node = nested
    for _ in range(40):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "metadata": nested})
    assert "deeper" in str(problems(exc)[0]["message"])


def test_problems_of_each_part_name_where_they_are() -> None:
    limits = Limits(max_string_length=5, max_metadata_keys=1)
    body = {
        "action": "a",
        "actor": {"id": " ", "name": "toolong"},
        "targets": [{"id": "ok"}, {"id": "", "type": "toolong", "metadata": {"a": 1, "b": 2}}],
        "context": {"user_agent": "toolong"},
        "error": {"message": "toolong"},
    }
    with pytest.raises(InvalidInput) as exc:
        one(body, limits=limits)
    assert sorted(str(p["field"]) for p in problems(exc)) == [
        "actor.id",
        "actor.name",
        "context.user_agent",
        "error.message",
        "targets[1].id",
        "targets[1].metadata",
        "targets[1].type",
    ]


def test_event_and_body_size_limits() -> None:
    small = Limits(max_event_bytes=200, max_metadata_bytes=10_000)
    with pytest.raises(PayloadTooLarge):
        parse_event(b'{"action":"' + b"a" * 300 + b'"}', small)
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "metadata": {"k": "v" * 150}}, limits=small)
    assert "over 200" in str(problems(exc)[0]["message"])


def test_malformed_json_non_utf8_and_deep_nesting_are_400() -> None:
    with pytest.raises(MalformedInput, match="not valid JSON"):
        parse_event(b'{"action": ', LIMITS)
    with pytest.raises(MalformedInput, match="not UTF-8"):
        parse_event(b'{"action": "\xff\xfe"}', LIMITS)
    deep = b'{"action":"a","metadata":{"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    with pytest.raises(MalformedInput, match="nested too deeply"):
        parse_event(deep, LIMITS)


@pytest.mark.parametrize("body", [b"", b"  \r\n"])
def test_an_empty_body_is_called_empty(body: bytes) -> None:
    for parse in (parse_event, parse_batch):
        with pytest.raises(MalformedInput, match="the body is empty"):
            parse(body, LIMITS)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{}", "is missing"), (b"[]", "is missing"), (b'{"events": {}}', "must be a list")],
)
def test_a_batch_without_its_list_says_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_batch(body, LIMITS)
    assert problems(exc) == [{"field": "events", "message": message}]


def test_batch_reports_every_problem_with_index() -> None:
    body = json.dumps(
        {"events": [{"action": "ok"}, {"action": 1}, {"action": "a", "zzz": 1}, {"action": " "}]}
    ).encode()
    with pytest.raises(InvalidInput) as exc:
        normalize(parse_batch(body, LIMITS), ORIGIN, LIMITS)
    found = {(p["index"], p["field"]) for p in problems(exc)}
    assert found == {(1, "action"), (2, "zzz")}
    # Schema-valid but semantically invalid events are reported by normalize().
    body = json.dumps({"events": [{"action": "ok"}, {"action": " "}, {"action": "b"}]}).encode()
    with pytest.raises(InvalidInput) as exc:
        normalize(parse_batch(body, LIMITS), ORIGIN, LIMITS)
    assert problems(exc) == [{"field": "action", "message": "must not be empty", "index": 1}]


def test_batch_count_limits() -> None:
    events = [{"action": "a"}] * 1001
    with pytest.raises(InvalidInput, match="at most 1000"):
        parse_batch(json.dumps({"events": events}).encode(), LIMITS)
    assert parse_batch(b'{"events": []}', LIMITS) == []  # nothing to store is no error
    with pytest.raises(InvalidInput):
        parse_batch(b'{"events": [], "other": 1}', LIMITS)


def test_idempotency_key_gives_stable_ids_per_position() -> None:
    origin = msgspec.structs.replace(ORIGIN, idempotency_key="req-1")
    batch = parse_batch(b'{"events":[{"action":"a"},{"action":"b"}]}', LIMITS)
    first = [s.event.id for s in normalize(batch, origin, LIMITS)]
    again = [s.event.id for s in normalize(batch, origin, LIMITS)]
    assert first == again and first[0] != first[1]


def test_tenant_in_body_needs_an_admin_key() -> None:
    with pytest.raises(Forbidden):
        one({"action": "a", "tenant": "other"})
    admin = msgspec.structs.replace(ORIGIN, may_set_tenant=True)
    assert one({"action": "a", "tenant": "other"}, origin=admin).tenant == "other"
    with pytest.raises(InvalidInput):
        one({"action": "a", "tenant": "bad tenant!"}, origin=admin)


def test_outcome_defaults_from_error() -> None:
    assert one({"action": "a"}).outcome == "success"
    failed = one({"action": "a", "error": {"code": "E1", "message": "nope"}})
    assert failed.outcome == "failure"


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ),
        max_size=10,
    ),
    st.text(min_size=1, max_size=50).filter(str.strip),
)
def test_accepted_events_round_trip_through_their_stored_bytes(
    metadata: dict[str, object], action: str
) -> None:
    stored = normalize(
        [parse_event(json.dumps({"action": action, "metadata": metadata}).encode(), LIMITS)],
        ORIGIN,
        LIMITS,
    )[0]
    assert msgspec.json.decode(stored.body, type=Event) == stored.event


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00"]
)
def test_occurred_at_out_of_range_is_a_422_naming_the_field(moment: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        one({"action": "a", "occurred_at": moment})
    assert problems(exc)[0]["field"] == "occurred_at"


def test_empty_context_and_error_objects_are_kept_as_null() -> None:
    event = one({"action": "a", "context": {}, "error": {}})
    assert (event.context, event.error, event.outcome) == (None, None, "failure")
    kept = one({"action": "a", "context": {"ip": "10.0.0.1"}, "error": {"code": "E1"}})
    assert kept.context is not None and kept.context.ip == "10.0.0.1"
    assert kept.error is not None and kept.error.code == "E1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"action": "a", "action": "b"}', "action"),
        (b'{"action": "a", "actor": {"id": "1", "id": "2"}}', "actor.id"),
        (b'{"action": "a", "metadata": {"k": {"x": 1, "x": 1}}}', "metadata.k.x"),
        (b'{"action": "a", "targets": [{"id": "t", "type": "a", "type": "b"}]}', "targets[0].type"),
        (b'{"action": 1, "action": "b"}', "action"),  # ambiguous before it is invalid
    ],
)
def test_a_key_given_twice_is_refused_with_its_path(body: bytes, field: str) -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_event(body, LIMITS)
    assert caught.value.status == 400
    assert caught.value.details[0]["field"] == field
    batch = b'{"events": [{"action": "ok"}, ' + body + b"]}"
    with pytest.raises(MalformedInput) as caught:
        parse_batch(batch, LIMITS)
    assert caught.value.details[0]["field"] == f"events[1].{field}"


def test_a_batch_key_given_twice_is_refused() -> None:
    with pytest.raises(MalformedInput, match="'events' twice"):
        parse_batch(b'{"events": [{"action": "a"}], "events": []}', LIMITS)

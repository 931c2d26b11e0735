"""CloudEvents -> events: the type filter, the generic mapping, and Chainguard's
pull events (mapping and typed-table row) on the vendor's shared sample."""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.fixtures import FIXTURES

import auditlake
from auditlake.core.cloudevents import CloudEvent, map_cloudevent, structured_form, type_kept
from auditlake.core.event import Actor, Context, ErrorInfo, Event, EventInput, Target
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.times import format_rfc3339 as rfc3339
from auditlake.core.times import parse_rfc3339
from auditlake.vendors import chainguard

PULL_TABLE = (
    Path(auditlake.__file__).parent / "vendors/chainguard/chainguard_registry_pull_v1.sqlite.sql"
)
WHEN = datetime(2026, 7, 22, 19, 49, 20, 277508, tzinfo=UTC)
NOW = datetime(2026, 7, 22, 19, 50, tzinfo=UTC)
ORIGIN = Origin(tenant="acme", caller="oidc:webhook:g1", source="cloudevents", received_at=NOW)


def ce(data: Any = None, **attributes: Any) -> CloudEvent:
    """A received CloudEvent: the required attributes, overridable."""
    base = {"specversion": "1.0", "id": "a-1", "source": "/shop", "type": "com.example.x"}
    return CloudEvent({**base, **attributes}, data)


def sample_pull() -> dict[str, Any]:
    """The shared Chainguard pull body, as documented (placeholders included)."""
    data: dict[str, Any] = json.loads((FIXTURES / "chainguard-pull-body.json").read_text())
    return data


def pull_event(data: Any, **attributes: Any) -> CloudEvent:
    """A pull CloudEvent as Chainguard sends it (see chainguard-pull-headers.txt)."""
    return ce(
        data,
        **{
            "id": "5b6f9a2e",
            "source": "cgr.dev",
            "type": chainguard.PULL_TYPE,
            "subject": "g1/repo-1",
            "time": WHEN,
            "group": "g1",
            "audience": "customer",
            **attributes,
        },
    )


def with_error(error: dict[str, Any] | None, **body: Any) -> dict[str, Any]:
    """The sample with `body.error` replaced (None: removed) and other body fields set."""
    data = copy.deepcopy(sample_pull())
    data["body"].update(body)
    if error is None:
        del data["body"]["error"]
    else:
        data["body"]["error"] = error
    return data


def mapped_pull(data: Any) -> EventInput:
    event = pull_event(data)
    item, _provenance = map_cloudevent(event)
    return chainguard.map_pull(item, event)


def stored(event: CloudEvent) -> Event:
    """The event the receiver would journal for a Chainguard CloudEvent."""
    item, provenance = map_cloudevent(event)
    if event.type == chainguard.PULL_TYPE:
        item = chainguard.map_pull(item, event)
    return normalize([item], ORIGIN, Limits(), [provenance])[0].event


def table_columns() -> list[str]:
    """The columns of the typed pull table's SQLite DDL, in order, after
    `seq`: the projection's, and the row's."""
    sql = chainguard.PULLS.ddl("sqlite")
    body = sql.split("CREATE TABLE IF NOT EXISTS chainguard_registry_pull_v1 (", 1)[1]
    body = body.split(");", 1)[0]
    names = [re.match(r'\s*"?(\w+)"?\s', line + " ") for line in body.strip().splitlines()]
    columns = [m.group(1) for m in names if m]
    assert columns[0] == "seq" and tuple(columns[1:]) == chainguard.PULL_COLUMNS
    return columns[1:]


# --- type_kept ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "patterns", "kept"),
    [
        ("com.example.order.created", (), True),
        ("anything", (), True),
        ("com.example.order.created", ("com.example.order.created",), True),
        ("com.example.order.created2", ("com.example.order.created",), False),
        ("com.example.order", ("com.example.order.created",), False),
        ("com.example.order.paid", ("com.example.order.*",), True),
        ("com.example.order.", ("com.example.order.*",), True),
        ("com.example.orders.paid", ("com.example.order.*",), False),
        ("com.example.order", ("com.example.order.*",), False),
        ("com.example.ping", ("com.example.order.*", "com.example.ping"), True),
        ("dev.chainguard.registry.push.v1", (chainguard.PULL_TYPE,), False),
        ("x", ("*",), True),
    ],
)
def test_type_kept_exact_prefix_and_empty(
    event_type: str, patterns: tuple[str, ...], kept: bool
) -> None:
    assert type_kept(event_type, patterns) is kept


# --- map_cloudevent ----------------------------------------------------------


def test_map_cloudevent_action_time_and_subject_target() -> None:
    item, provenance = map_cloudevent(ce({"order": 42}, time=WHEN, subject="order-42"))
    assert item.action == "com.example.x"
    assert item.occurred_at is not None and parse_rfc3339(item.occurred_at) == WHEN
    assert item.targets == [Target(id="order-42", type="subject")]
    assert item.metadata is None  # no extension attributes
    assert provenance.source == "cloudevents:/shop"


def test_map_cloudevent_without_time_or_subject() -> None:
    item, _ = map_cloudevent(ce())
    assert item.occurred_at is None  # normalize uses the receipt time
    assert item.targets == []


def test_derived_id_is_stable_and_scoped_to_the_source() -> None:
    first, _ = map_cloudevent(ce(id="same"))
    again, _ = map_cloudevent(ce({"other": "data"}, id="same", time=WHEN))
    other_source, _ = map_cloudevent(ce(id="same", source="/other-shop"))
    other_id, _ = map_cloudevent(ce(id="different"))
    assert first.id is not None
    assert first.id == again.id  # a redelivery is a duplicate
    assert len({first.id, other_source.id, other_id.id}) == 3


def test_extensions_become_metadata() -> None:
    event = ce(time=WHEN, subject="s", datacontenttype="application/json", region="eu", n=3)
    item, _ = map_cloudevent(event)
    assert item.metadata == {"region": "eu", "n": 3}


def test_raw_is_the_structured_form() -> None:
    event = ce({"order": 42}, time=WHEN, subject="order-42", region="eu")
    _, provenance = map_cloudevent(event)
    assert provenance.raw == structured_form(event)
    assert provenance.raw == {
        "specversion": "1.0",
        "id": "a-1",
        "source": "/shop",
        "type": "com.example.x",
        "time": "2026-07-22T19:49:20.277508Z",
        "subject": "order-42",
        "region": "eu",
        "data": {"order": 42},
    }


def test_structured_form_writes_time_in_utc() -> None:
    east = datetime(2026, 7, 22, 21, 49, 20, tzinfo=timezone(timedelta(hours=2)))
    assert structured_form(ce(time=east))["time"] == "2026-07-22T19:49:20Z"


@pytest.mark.parametrize("blob", [b"\x00\xffpng", bytearray(b"\x01\x02")])
def test_bytes_data_is_kept_as_data_base64(blob: bytes) -> None:
    _, provenance = map_cloudevent(ce(blob, datacontenttype="application/octet-stream"))
    assert "data" not in provenance.raw
    assert base64.b64decode(provenance.raw["data_base64"]) == bytes(blob)


def test_text_data_is_data_and_no_data_is_neither() -> None:
    assert map_cloudevent(ce("hello"))[1].raw["data"] == "hello"
    raw = map_cloudevent(ce())[1].raw
    assert "data" not in raw and "data_base64" not in raw


# --- map_pull ----------------------------------------------------------------


def test_map_pull_actor_targets_and_context_of_the_sample() -> None:
    data = with_error(None)
    item = mapped_pull(data)
    body = data["body"]
    assert item.actor == Actor(id="<identity that triggered the event>", type="identity")
    assert item.targets == [
        Target(id=body["repo_id"], type="repository", name=body["repository"]),
        Target(id=f"{body['repository']}:latest", type="tag", name="latest"),
        Target(id=body["digest"], type="digest"),
    ]
    assert item.context == Context(
        location="ColumbusOHUS", user_agent="<user-agent of the client who pulled>", ip=None
    )  # the sample's remote_address is empty
    assert (item.outcome, item.error) == ("success", None)


def test_map_pull_keeps_the_generic_fields() -> None:
    event = pull_event(with_error(None))
    generic, _ = map_cloudevent(event)
    item = chainguard.map_pull(generic, event)
    assert (item.id, item.action, item.occurred_at) == (
        generic.id,
        chainguard.PULL_TYPE,
        rfc3339(WHEN),
    )
    assert item.metadata == {"group": "g1", "audience": "customer"}


def test_map_pull_ip_from_remote_address() -> None:
    item = mapped_pull(with_error(None, remote_address="198.51.100.7"))
    assert item.context is not None and item.context.ip == "198.51.100.7"


@pytest.mark.parametrize(
    "error",
    [None, {"status": 0}, {"status": 0, "code": "", "message": ""}, {"status": 0, "code": None}],
)
def test_map_pull_success(error: dict[str, Any] | None) -> None:
    item = mapped_pull(with_error(error))
    assert (item.outcome, item.error) == ("success", None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"status": 403, "message": "denied"}, ErrorInfo(code="403", message="denied")),
        (
            {"status": 0, "code": "DENIED", "message": "access denied"},
            ErrorInfo(code="DENIED", message="access denied"),
        ),
        (
            {"status": 404, "code": "MANIFEST_UNKNOWN", "message": "manifest unknown"},
            ErrorInfo(code="MANIFEST_UNKNOWN", message="manifest unknown"),
        ),
    ],
)
def test_map_pull_failure(error: dict[str, Any], expected: ErrorInfo) -> None:
    item = mapped_pull(with_error(error))
    assert (item.outcome, item.error) == ("failure", expected)


def test_the_sample_as_documented_is_a_failure() -> None:
    # Its error holds a code (a placeholder) with status 0: a code means failure.
    item = mapped_pull(sample_pull())
    assert item.outcome == "failure"
    assert item.error == ErrorInfo(
        code="<OCI distribution-spec error code>", message="<error message>"
    )


def test_map_pull_without_actor_or_repository_name() -> None:
    data = with_error(None, repository=None)
    del data["actor"]
    item = mapped_pull(data)
    repo_id = data["body"]["repo_id"]
    assert item.actor is None
    assert item.targets[:2] == [
        Target(id=repo_id, type="repository", name=None),
        Target(id=f"{repo_id}:latest", type="tag", name="latest"),
    ]


def test_map_pull_tag_alone() -> None:
    item = mapped_pull({"body": {"tag": "latest"}})
    assert item.targets == [Target(id="latest", type="tag", name="latest")]


@pytest.mark.parametrize(
    "data",
    [
        None,
        "not json",
        b"\x00\x01",
        [1, 2],
        {"actor": {"subject": "u"}},  # no body
        {"body": "a string"},
        {"body": {"tag": 5}},
        {"body": {"error": "denied"}},
        {"body": {}, "actor": "u"},
    ],
)
def test_malformed_pull_data_keeps_the_generic_mapping(data: Any) -> None:
    event = pull_event(data)
    generic, _ = map_cloudevent(event)
    assert chainguard.map_pull(generic, event) is generic
    assert generic.targets == [Target(id="g1/repo-1", type="subject")]


# --- pull_row ----------------------------------------------------------------


def test_pull_row_has_the_table_columns_in_order() -> None:
    data = with_error(
        {"status": 403, "code": "DENIED", "message": "denied"}, remote_address="198.51.100.7"
    )
    data["actor"]["act"] = {"iss": "https://token.actions.githubusercontent.com", "sub": "repo"}
    event = stored(pull_event(data))
    assert (event.outcome, event.error) == ("failure", ErrorInfo(code="DENIED", message="denied"))
    row = chainguard.pull_row(event)
    assert row is not None
    columns = table_columns()
    assert len(row) == len(columns)
    values = dict(zip(columns, row, strict=True))
    act = values.pop("actor_act")
    assert json.loads(act) == data["actor"]["act"]
    body = data["body"]
    assert values == {
        "tenant": "acme",
        "event_id": event.id,
        "occurred_us": int(WHEN.timestamp()) * 1_000_000 + WHEN.microsecond,
        "actor_subject": "<identity that triggered the event>",
        "repository": body["repository"],
        "repo_id": body["repo_id"],
        "tag": "latest",
        "digest": body["digest"],
        "method": "GET",
        "type": "manifest",
        "when": "2026-07-22T19:49:20.275672",
        "location": "ColumbusOHUS",
        "user_agent": body["user_agent"],
        "remote_address": "198.51.100.7",
        "error_status": 403,
        "error_code": "DENIED",
        "error_message": "denied",
    }


def test_pull_row_of_a_success_has_no_error_and_no_act() -> None:
    row = chainguard.pull_row(stored(pull_event(with_error(None))))
    assert row is not None
    values = dict(zip(table_columns(), row, strict=True))
    assert values["actor_act"] is None
    assert (values["error_status"], values["error_code"], values["error_message"]) == (
        None,
        None,
        None,
    )


def test_pull_row_is_none_for_other_actions_and_raw_without_data() -> None:
    push = stored(pull_event(with_error(None), type=chainguard.PUSH_TYPE))
    assert chainguard.pull_row(push) is None
    no_data = stored(pull_event(None))
    assert no_data.raw is not None and "data" not in no_data.raw
    assert chainguard.pull_row(no_data) is None
    malformed = stored(pull_event({"body": "a string"}))
    assert chainguard.pull_row(malformed) is None
    pulled = stored(pull_event(with_error(None)))
    raws: tuple[Any, ...] = (None, "text", [])
    for raw in raws:
        assert chainguard.pull_row(_with_raw(pulled, raw)) is None


def _with_raw(event: Event, raw: Any) -> Event:
    return msgspec.structs.replace(event, raw=raw)

"""A different event under a stored id is a 409 and is not stored; an
identical re-send stays a 200 duplicate. Over HTTP (the events API, the
CloudEvents receiver, the Python client) on the embedded backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from starlette.testclient import TestClient

from auditlake import ApiError, Client
from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.runtime import Services
from auditlake.web.app import create_app

if TYPE_CHECKING:
    from conftest import LiveServer

Api = tuple[TestClient, dict[str, str]]
SIGNED_IN: dict[str, Any] = {
    "id": "evt-7", "action": "user.signed_in", "occurred_at": "2026-11-01T10:00:00Z",
    "actor": {"id": "user_1", "type": "user", "name": "Ada"},
    "targets": [{"id": "team_1", "type": "team"}], "metadata": {"plan": "pro"},
}  # fmt: skip
CONFLICT_COUNTER = "auditlake_duplicate_conflicts_total"


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    with TestClient(create_app(services)) as client:
        yield client, {"authorization": f"Bearer {secret}"}


def stored_ids(api: Api) -> list[str]:
    client, headers = api
    response = client.get("/v1/events", params={"limit": 1000, "order": "asc"}, headers=headers)
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["data"]]


def conflict_details(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict" and "nothing was stored" in error["message"]
    return list(error["details"])


def test_an_identical_resend_is_a_duplicate_with_the_original_id(api: Api) -> None:
    client, headers = api
    first = client.post("/v1/events", json=SIGNED_IN, headers=headers)
    again = client.post("/v1/events", json=SIGNED_IN, headers=headers)
    assert (first.status_code, first.json()) == (201, {"id": "evt-7", "status": "created"})
    assert (again.status_code, again.json()) == (200, {"id": "evt-7", "status": "duplicate"})


@pytest.mark.parametrize(
    "change",
    [
        {"action": "org.deleted"},
        {"metadata": {"plan": "free"}},
        {"actor": {"id": "user_2", "type": "user", "name": "Ada"}},
        {"targets": [{"id": "team_1", "type": "team"}, {"id": "org_1", "type": "org"}]},
    ],
    ids=["action", "metadata", "actor", "targets"],
)
def test_a_different_event_under_a_stored_id_is_a_409(api: Api, change: dict[str, Any]) -> None:
    client, headers = api
    assert client.post("/v1/events", json=SIGNED_IN, headers=headers).status_code == 201
    refused = client.post("/v1/events", json={**SIGNED_IN, **change}, headers=headers)
    assert [(d["id"], d["index"]) for d in conflict_details(refused)] == [("evt-7", 0)]
    kept = client.get("/v1/events/evt-7", headers=headers).json()
    assert (kept["action"], kept["metadata"], kept["actor"]["id"]) == (
        "user.signed_in", {"plan": "pro"}, "user_1",
    )  # fmt: skip
    assert len(kept["targets"]) == 1 and stored_ids(api) == ["evt-7"]


def test_only_service_defaults_differ_so_it_is_a_duplicate(api: Api) -> None:
    client, headers = api
    body = {"id": "evt-9", "action": "user.signed_out", "actor": {"id": "user_1"}}
    first = client.post("/v1/events", json=body, headers=headers)
    time.sleep(0.05)  # another receipt time, so another default occurred_at
    again = client.post("/v1/events", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"id": "evt-9", "status": "duplicate"}
    kept = client.get("/v1/events/evt-9", headers=headers).json()
    assert kept["occurred_at"] == kept["received_at"]  # the first receipt, untouched


def test_a_reused_idempotency_key_with_another_body_is_a_409(api: Api) -> None:
    client, headers = api
    keyed = {**headers, "idempotency-key": "order-77"}
    first = client.post("/v1/events", json={"action": "order.paid"}, headers=keyed)
    again = client.post("/v1/events", json={"action": "order.paid"}, headers=keyed)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    other = client.post("/v1/events", json={"action": "order.refunded"}, headers=keyed)
    assert [d["id"] for d in conflict_details(other)] == [first.json()["id"]]
    keyed = {**headers, "idempotency-key": "import-1"}
    batch = {"events": [{"action": "a"}, {"action": "b"}]}
    assert client.post("/v1/events/batch", json=batch, headers=keyed).status_code == 201
    swapped = {"events": [{"action": "b"}, {"action": "a"}]}
    refused = client.post("/v1/events/batch", json=swapped, headers=keyed)
    assert [d["index"] for d in conflict_details(refused)] == [0, 1]
    assert len(stored_ids(api)) == 3


def test_a_batch_with_one_conflicting_item_stores_nothing(api: Api) -> None:
    client, headers = api
    assert client.post("/v1/events", json=SIGNED_IN, headers=headers).status_code == 201
    events = [{"id": f"new-{n}", "action": "doc.viewed"} for n in range(5)]
    events.insert(3, {**SIGNED_IN, "action": "org.deleted"})
    refused = client.post("/v1/events/batch", json={"events": events}, headers=headers)
    details = conflict_details(refused)
    assert [(d["id"], d["index"]) for d in details] == [("evt-7", 3)]
    assert stored_ids(api) == ["evt-7"]
    # The same batch with the identical event: the new ones stored, one duplicate.
    events[3] = SIGNED_IN
    answer = client.post("/v1/events/batch", json={"events": events}, headers=headers).json()
    assert (answer["created"], answer["duplicates"]) == (5, 1)
    metrics = client.get("/metrics").text
    assert f'{CONFLICT_COUNTER}{{source="api"}} 1.0' in metrics
    assert 'auditlake_events_total{result="rejected",source="api"} 6.0' in metrics


def test_two_events_with_one_id_in_a_batch_must_be_identical(api: Api) -> None:
    client, headers = api
    twins = [
        {"id": "dup", "action": "a"},
        {"id": "ok", "action": "a"},
        {"id": "dup", "action": "b"},
    ]
    refused = client.post("/v1/events/batch", json={"events": twins}, headers=headers)
    (detail,) = conflict_details(refused)
    assert (detail["id"], detail["index"], detail["other_index"]) == ("dup", 2, 0)
    assert "index 0 of this request" in detail["message"]
    # Nothing was stored under "dup": the message must not say one is.
    message = refused.json()["error"]["message"]
    assert "two different items of this request" in message and "stored event" not in message
    assert stored_ids(api) == []
    # Both kinds in one request: each told as what it is.
    assert client.post("/v1/events", json=SIGNED_IN, headers=headers).status_code == 201
    both = [*twins, {**SIGNED_IN, "action": "org.deleted"}]
    mixed = client.post("/v1/events/batch", json={"events": both}, headers=headers)
    assert [(d["id"], d.get("other_index")) for d in conflict_details(mixed)] == [
        ("dup", 0), ("evt-7", None),
    ]  # fmt: skip
    message = mixed.json()["error"]["message"]
    assert "'evt-7' already names a different stored event" in message
    assert "'dup' names two different items of this request" in message
    assert stored_ids(api) == ["evt-7"]
    same = [{"id": "dup", "action": "a"}, {"id": "dup", "action": "a"}]
    answer = client.post("/v1/events/batch", json={"events": same}, headers=headers)
    assert answer.status_code == 201
    assert (answer.json()["created"], answer.json()["duplicates"]) == (1, 1)


def test_the_openapi_document_lists_the_409(api: Api) -> None:
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/events", "/v1/events/batch"):
        assert "409" in paths[path]["post"]["responses"]


def test_the_client_raises_the_conflict(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.key("acme")) as client:
        assert client.publish(SIGNED_IN).status == "created"
        assert client.publish(SIGNED_IN).status == "duplicate"
        with pytest.raises(ApiError) as refused:
            client.publish({**SIGNED_IN, "action": "org.deleted"})
        assert (refused.value.status, refused.value.code) == (409, "conflict")
        assert not refused.value.transient  # retrying cannot help
        assert refused.value.details[0]["id"] == "evt-7"
        assert client.get("evt-7").action == "user.signed_in"


# --------------------------------------------------------------------------- CloudEvents

FORMAT = JSONFormat()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    source = {"name": "shop", "tenant": "acme", "types": ["com.example.*"]}
    settings = load_settings(
        env={}, overrides={"data_dir": str(tmp_path / "data"), "sources": {"cloudevents": [source]}}
    )
    services = build_services(settings)
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    with TestClient(create_app(services)) as client:
        yield client, {"authorization": f"Bearer {secret}"}


def order(event_id: str, data: Any, type_: str = "com.example.order.created") -> CloudEvent:
    attributes = {"type": type_, "source": "/shop", "id": event_id, "subject": "order-42"}
    return CloudEvent(attributes=attributes, data=data)


def deliver(client: TestClient, message: Any, auth: dict[str, str]) -> Any:
    return client.post("/v1/cloudevents", content=message.body, headers={**message.headers, **auth})


def test_a_cloudevent_redelivered_with_other_data_is_a_409(
    receiver: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = receiver
    first = order("o-1", {"total": 10})
    created = deliver(client, to_structured(first, FORMAT), auth)
    again = deliver(client, to_binary(first, FORMAT), auth)  # the same event, the other mode
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json() == {"id": created.json()["id"], "status": "duplicate"}
    changed = CloudEvent(attributes=first.get_attributes(), data={"total": 99})
    refused = deliver(client, to_binary(changed, FORMAT), auth)
    (detail,) = conflict_details(refused)
    assert (detail["id"], detail["cloudevent_id"], detail["cloudevent_source"]) == (
        created.json()["id"], "o-1", "/shop",
    )  # fmt: skip
    kept = client.get(f"/v1/events/{created.json()['id']}", headers=auth).json()
    assert kept["raw"]["data"] == {"total": 10}
    metrics = client.get("/metrics").text
    assert f'{CONFLICT_COUNTER}{{source="cloudevents:shop"}} 1.0' in metrics


def test_a_cloudevents_batch_names_the_conflicting_item_and_stores_nothing(
    receiver: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = receiver
    no_time = b'{"specversion": "1.0", "id": "t-1", "source": "/clock", "type": "com.example.x"}'
    structured = {**auth, "content-type": "application/cloudevents+json"}
    assert client.post("/v1/cloudevents", content=no_time, headers=structured).status_code == 201
    time.sleep(0.05)  # only the receipt time (the default occurred_at) differs: a duplicate
    assert client.post("/v1/cloudevents", content=no_time, headers=structured).status_code == 200
    items = [
        {"specversion": "1.0", "id": "ignored-1", "source": "/shop", "type": "org.other"},
        {"specversion": "1.0", "id": "b-1", "source": "/shop", "type": "com.example.new"},
        {"specversion": "1.0", "id": "t-1", "source": "/clock", "type": "com.example.y"},
    ]
    batch = {**auth, "content-type": "application/cloudevents-batch+json"}
    refused = client.post("/v1/cloudevents", json=items, headers=batch)
    (detail,) = conflict_details(refused)
    assert (detail["index"], detail["cloudevent_id"]) == (2, "t-1")  # its place in the request
    # Two different CloudEvents of one batch with one source + id, after an
    # ignored type: positions in the request, and no word of a redelivery.
    twins = [items[0], items[1], {**items[1], "type": "com.example.other"}]
    refused = client.post("/v1/cloudevents", json=twins, headers=batch)
    (detail,) = conflict_details(refused)
    assert (detail["index"], detail["other_index"]) == (2, 1)
    assert "index 1 of this request" in detail["message"]
    message = refused.json()["error"]["message"]
    assert "twice with different content" in message and "delivered before" not in message
    found = client.get("/v1/events", params={"limit": 100}, headers=auth).json()["data"]
    assert [e["raw"]["id"] for e in found] == ["t-1"]

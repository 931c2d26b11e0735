"""The CloudEvents receiver over a real embedded backend, sent to with the
official CloudEvents SDK (binary and structured modes) and raw batches."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.web.app import create_app

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes, no..!").decode()
FORMAT = JSONFormat()

STALE = timedelta(minutes=6)  # beyond the 5-minute tolerance


def ce(type_: str = "com.example.order.created", **attributes: Any) -> CloudEvent:
    data = attributes.pop("data", {"order": 42, "note": "quarterly"})
    return CloudEvent(
        attributes={"type": type_, "source": "/shop", "subject": "order-42", **attributes},
        data=data,
    )


def start(tmp_path: Path, source: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    settings = load_settings(
        env=env or {},
        overrides={"data_dir": str(tmp_path / "data"), "sources": {"cloudevents": [source]}},
    )
    return build_services(settings)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """An API-key source keeping com.example.order.*, and ingest / read headers
    (a key of another tenant is in the app's state, as `other_key`)."""
    source = {
        "name": "shop",
        "tenant": "acme",
        "types": ["com.example.order.*"],
        "allowed_origins": ["events.example.com"],
    }
    services = start(tmp_path, source)
    ingest = services.keys.create("acme", ["ingest"], "t")[1]
    read = services.keys.create("acme", ["read"], "t")[1]
    app = create_app(services)
    app.state.other_key = services.keys.create("other", ["ingest"], "t")[1]
    with TestClient(app) as client:
        yield client, {"authorization": f"Bearer {ingest}"}, {"authorization": f"Bearer {read}"}


def search(client: TestClient, read: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/events", params=params, headers=read)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def post(client: TestClient, message: Any, auth: dict[str, str]) -> Any:
    return client.post("/v1/cloudevents", content=message.body, headers={**message.headers, **auth})


def test_binary_and_structured_modes_map_to_events(receiver: Any) -> None:
    client, ingest, read = receiver
    when = datetime(2026, 7, 22, 19, 49, 20, 277508, tzinfo=UTC)
    first = ce(id="a-1", time=when, region="eu")
    response = post(client, to_binary(first, FORMAT), ingest)
    assert response.status_code == 201, response.text
    second = ce("com.example.order.paid", id="a-2")
    assert post(client, to_structured(second, FORMAT), ingest).status_code == 201

    found = search(client, read, source="cloudevents:/shop", order="asc")
    assert [e["action"] for e in found] == ["com.example.order.created", "com.example.order.paid"]
    event = found[0]
    assert event["occurred_at"] == "2026-07-22T19:49:20.277508Z"
    assert [(t["id"], t["type"]) for t in event["targets"]] == [("order-42", "subject")]
    assert event["metadata"] == {"region": "eu"}  # extension attributes
    assert event["raw"]["data"] == {"order": 42, "note": "quarterly"}
    assert event["raw"]["id"] == "a-1" and event["raw"]["specversion"] == "1.0"
    assert event["caller"].startswith("key:")
    assert (
        search(client, read, q="order-42", action="com.example.order.paid")[0]["id"] != event["id"]
    )


def test_without_a_time_the_event_occurred_when_it_was_received(receiver: Any) -> None:
    client, ingest, read = receiver
    body = b'{"specversion": "1.0", "id": "t-1", "source": "/clock", "type": "com.example.order.x"}'
    headers = {"content-type": "application/cloudevents+json", **ingest}
    assert client.post("/v1/cloudevents", content=body, headers=headers).status_code == 201
    (event,) = search(client, read, source="cloudevents:/clock")
    assert event["occurred_at"] == event["received_at"]


def test_redelivery_is_a_duplicate_and_sources_do_not_collide(receiver: Any) -> None:
    client, ingest, read = receiver
    event = ce(id="same")
    created = post(client, to_structured(event, FORMAT), ingest)
    again = post(client, to_binary(event, FORMAT), ingest)
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json() == {"id": created.json()["id"], "status": "duplicate"}
    other = ce(id="same", source="/other-shop")
    assert post(client, to_binary(other, FORMAT), ingest).status_code == 201
    assert len(search(client, read)) == 2


def test_data_base64_and_binary_data_are_kept(receiver: Any) -> None:
    client, ingest, read = receiver
    blob = ce(id="b-1", datacontenttype="application/octet-stream", data=b"\x00\xffpng")
    assert post(client, to_structured(blob, FORMAT), ingest).status_code == 201
    raw_blob = ce(id="b-2", datacontenttype="application/octet-stream", data=b"\x01\x02")
    assert post(client, to_binary(raw_blob, FORMAT), ingest).status_code == 201
    kept = {e["raw"]["id"]: e["raw"] for e in search(client, read)}
    assert base64.b64decode(kept["b-1"]["data_base64"]) == b"\x00\xffpng"
    assert base64.b64decode(kept["b-2"]["data_base64"]) == b"\x01\x02"


def test_a_batch_is_all_or_nothing_and_reports_ignored_types(receiver: Any) -> None:
    client, ingest, read = receiver
    items = [json.loads(to_structured(ce(id=f"c-{n}"), FORMAT).body) for n in range(3)]
    items.append(json.loads(to_structured(ce("com.example.ping", id="p"), FORMAT).body))
    headers = {**ingest, "content-type": "application/cloudevents-batch+json"}
    bad = [*items, {"specversion": "1.0", "id": "x", "source": "/shop"}]  # no type
    rejected = client.post("/v1/cloudevents", content=json.dumps(bad), headers=headers)
    assert rejected.status_code == 422, rejected.text
    assert {"index": 4}.items() <= rejected.json()["error"]["details"][0].items()
    assert search(client, read) == []
    accepted = client.post("/v1/cloudevents", content=json.dumps(items), headers=headers)
    assert accepted.status_code == 201, accepted.text
    answer = accepted.json()
    assert (answer["created"], answer["duplicates"], answer["ignored"]) == (3, 0, 1)
    assert answer["results"][3] == {"id": None, "status": "ignored", "type": "com.example.ping"}
    assert len(search(client, read)) == 3


def test_other_types_are_acknowledged_dropped_and_counted(receiver: Any) -> None:
    client, ingest, read = receiver
    response = post(client, to_binary(ce("com.example.ping"), FORMAT), ingest)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert search(client, read) == []
    metrics = client.get("/metrics").text
    assert 'auditlake_events_total{result="ignored",source="cloudevents:shop"} 1.0' in metrics


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "com.example.order.x"},
         b"{}", 422, "id"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
          "ce-type": "com.example.order.x", "ce-time": "yesterday"}, b"{}", 400, "ce-time"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
          "ce-type": "com.example.order.x", "ce-time": "2026-01-01T23:59:61Z"},
         b"{}", 400, "ce-time"),
        # Binary mode carries the data's type in Content-Type (HTTP binding 3.1.1).
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
          "ce-type": "com.example.order.x", "ce-datacontenttype": "text/plain"},
         b"{}", 400, "ce-datacontenttype"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
          "ce-type": "com.example.order.x", "ce-datacontenttype": "application/json",
          "content-type": "application/json"}, b"{}", 400, "ce-datacontenttype"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
          "ce-type": "com.example.order.x", "content-type": "application/json"},
         b"{nope", 400, None),
        ({"content-type": "application/cloudevents+json"}, b'{"id": "1"', 400, None),
        ({"content-type": "application/cloudevents+json"}, b"[1, 2]", 422, None),
        ({"content-type": "application/cloudevents-batch+json"}, b"{}", 422, None),
        ({"content-type": "application/cloudevents-batch+json"}, b"[" * 10000, 400, None),
        ({"content-type": "application/json"}, b'{"type": "x"}', 422, "content-type"),
    ],
)  # fmt: skip
def test_bad_cloudevents_get_a_clear_4xx(
    receiver: Any, headers: dict[str, str], body: bytes, status: int, field: str | None
) -> None:
    client, ingest, _read = receiver
    response = client.post("/v1/cloudevents", content=body, headers={**headers, **ingest})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert any(p["field"] == field for p in error["details"]), error
    assert client.get("/healthz").status_code == 200


def test_api_key_rules(receiver: Any) -> None:
    client, _ingest, read = receiver
    message = to_binary(ce(id="k-1"), FORMAT)
    assert post(client, message, {}).status_code == 401
    assert post(client, message, read).status_code == 403  # no ingest scope
    other_tenant = {"authorization": f"Bearer {client.app.state.other_key}"}
    assert post(client, message, other_tenant).status_code == 403


def test_webhook_validation_handshake(receiver: Any) -> None:
    client, _ingest, _read = receiver
    allowed = client.options(
        "/v1/cloudevents", headers={"WebHook-Request-Origin": "events.example.com"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["webhook-allowed-origin"] == "events.example.com"
    other = client.options("/v1/cloudevents", headers={"WebHook-Request-Origin": "evil.example"})
    assert other.status_code == 403
    assert client.options("/v1/cloudevents").status_code == 422


def test_standard_webhooks_source(tmp_path: Path) -> None:
    source = {"name": "hooks", "tenant": "acme", "path": "/hooks", "webhook": {"secret_env": "S"}}
    services = start(tmp_path, source, {"S": SECRET})
    message = to_structured(ce(id="w-1"), FORMAT)
    signer = Webhook(SECRET)
    now = datetime.now(UTC)
    signature = signer.sign("msg_1", now, message.body.decode())
    signed = {
        **message.headers,
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    with TestClient(create_app(services)) as client:
        assert client.post("/hooks", content=message.body, headers=signed).status_code == 201
        replayed = client.post("/hooks", content=message.body, headers=signed)
        assert replayed.status_code == 403
        # a verified delivery that was not kept (invalid) may be retried
        bad = b'{"specversion": "1.0", "id": "w-2", "source": "/shop"}'
        signed_bad = {
            **signed,
            "webhook-id": "msg_2",
            "webhook-signature": signer.sign("msg_2", now, bad.decode()),
        }
        assert client.post("/hooks", content=bad, headers=signed_bad).status_code == 422
        assert client.post("/hooks", content=bad, headers=signed_bad).status_code == 422
        changed = message.body.replace(b"42", b"43")
        assert client.post("/hooks", content=changed, headers=signed).status_code == 403
        other = Webhook(base64.b64encode(b"another secret, 32 bytes long!!!").decode())
        for signer_, moment, msg_id in ((other, now, "msg_3"), (signer, now - STALE, "msg_4")):
            headers = {
                **message.headers,
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": signer_.sign(msg_id, moment, message.body.decode()),
            }
            assert client.post("/hooks", content=message.body, headers=headers).status_code == 403
        assert (
            client.post("/hooks", content=message.body, headers=message.headers).status_code == 401
        )


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"data_base64": "AAE="}, "data_base64"),
        ({"time": "9999-12-31T23:00:00-05:00"}, "time"),  # past 9999 once in UTC
        ({"time": "2016-12-31T23:59:59"}, "time"),  # RFC 3339 needs an offset
        ({"time": "1969-12-31T23:59:60Z"}, "occurred_at"),  # a time, but before 1970
    ],
)
def test_structured_events_the_receiver_refuses(
    receiver: Any, attributes: dict[str, Any], field: str
) -> None:
    client, ingest, _read = receiver
    event = {"specversion": "1.0", "id": "r-1", "source": "/shop",
             "type": "com.example.order.created", "data": {"a": 1}, **attributes}  # fmt: skip
    headers = {**ingest, "content-type": "application/cloudevents+json"}
    response = client.post("/v1/cloudevents", content=json.dumps(event), headers=headers)
    assert response.status_code == 422, response.text
    assert any(p["field"] == field for p in response.json()["error"]["details"])


def test_a_pull_event_with_an_odd_status_does_not_stop_indexing(tmp_path: Path) -> None:
    services = start(tmp_path, {"name": "any", "tenant": "acme"})
    key = services.keys.create("acme", ["ingest", "read"], "t")[1]
    auth = {"authorization": f"Bearer {key}"}
    odd = ce("dev.chainguard.registry.pull.v1", id="odd",
             data={"body": {"repository": "r", "error": {"status": 2**70}}})  # fmt: skip
    long_subject = ce(id="long", subject="s" * 300)
    with TestClient(create_app(services)) as client:
        assert post(client, to_binary(odd, FORMAT), auth).status_code == 201
        assert post(client, to_binary(long_subject, FORMAT), auth).status_code == 201
        found = search(client, auth, order="asc")
    assert [e["raw"]["id"] for e in found] == ["odd", "long"]
    assert len(found[1]["targets"][0]["id"]) == 256

"""The receiver end to end: binary-mode header values decoded as the HTTP
binding says, empty batches, and JSON that names a key twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.web.app import create_app

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"


class Receiver:
    def __init__(self, client: TestClient, ingest: str, read: str) -> None:
        self.client = client
        self.ingest = {"authorization": f"Bearer {ingest}"}
        self.read = {"authorization": f"Bearer {read}"}

    def binary(self, event_id: str, body: bytes = b'{"a": 1}', **headers: Any) -> Any:
        sent: dict[str, Any] = {
            "ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/shop",
            "ce-type": "com.example.order.created", "content-type": "application/json",
            **self.ingest,
        }  # fmt: skip
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.client.post("/v1/cloudevents", content=body, headers=sent)

    def body(self, content: bytes, content_type: str) -> Any:
        headers = {**self.ingest, "content-type": content_type}
        return self.client.post("/v1/cloudevents", content=content, headers=headers)

    def stored(self, event_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/events/{event_id}", headers=self.read)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def count(self) -> int:
        response = self.client.get("/v1/events", params={"limit": 1000}, headers=self.read)
        return len(response.json()["data"])


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    settings = load_settings(
        env={},
        overrides={
            "data_dir": str(tmp_path_factory.mktemp("headers") / "data"),
            "sources": {"cloudevents": [{"name": "shop", "tenant": "acme"}]},
        },
    )
    services = build_services(settings)
    ingest = services.keys.create("acme", ["ingest"], "t")[1]
    read = services.keys.create("acme", ["read"], "t")[1]
    with TestClient(create_app(services)) as client:
        yield Receiver(client, ingest, read)


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ('"orders/42 \\"draft\\""', 'orders/42 "draft"'),  # the field report
        ("orders/42%20%22draft%22", 'orders/42 "draft"'),  # what a current sender sends
        ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"),
        ('"caf%C3%A9 au lait"', "café au lait"),
        ("plain/subject", "plain/subject"),
    ],
)
def test_subject_header_values_are_decoded(receiver: Receiver, header: str, subject: str) -> None:
    response = receiver.binary(f"subject-{len(header)}-{header.count('%')}", ce_subject=header)
    assert response.status_code == 201, response.text
    stored = receiver.stored(response.json()["id"])
    assert [(t["id"], t["type"]) for t in stored["targets"]] == [(subject, "subject")]
    assert stored["raw"]["subject"] == subject


def test_every_ce_header_is_decoded(receiver: Receiver) -> None:
    response = receiver.binary(
        '"quoted id"', ce_source="%2Fshop%2Feu", ce_type='"com.example.order.created"',
        ce_time='"2026-07-22T19:49:20Z"', ce_region="eu%20west",
    )  # fmt: skip
    assert response.status_code == 201, response.text
    stored = receiver.stored(response.json()["id"])
    assert stored["raw"]["id"] == "quoted id"
    assert stored["source"] == "cloudevents:/shop/eu"
    assert stored["action"] == "com.example.order.created"
    assert stored["occurred_at"] == "2026-07-22T19:49:20Z"
    assert stored["metadata"] == {"region": "eu west"}


def test_raw_utf8_octets_in_a_header_are_read_as_utf8(receiver: Receiver) -> None:
    response = receiver.binary("raw-utf8", ce_subject="café".encode())
    assert response.status_code == 201, response.text
    assert receiver.stored(response.json()["id"])["raw"]["subject"] == "café"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("ce-subject", "50%"),
        ("ce-subject", "%C0%A0"),  # overlong: the binding's own example
        ("ce-id", "%FF"),
        ("ce-source", '"unterminated'),
        ("ce-region", "a%0Ab"),
        ("ce-type", "caf%E9"),  # latin-1, not UTF-8
    ],
)
def test_a_value_the_binding_refuses_is_a_400_naming_the_header(
    receiver: Receiver, header: str, value: Any
) -> None:
    before = receiver.count()
    response = receiver.binary("refused", **{header.replace("-", "_"): value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed"
    assert error["details"][0]["field"] == header
    assert header in error["message"]
    assert receiver.count() == before


def test_a_repeated_ce_header_is_refused(receiver: Receiver) -> None:
    headers = [
        ("ce-specversion", "1.0"), ("ce-id", "twice"), ("ce-source", "/shop"),
        ("ce-type", "t.x"), ("ce-subject", "a"), ("ce-subject", "b"),
        *receiver.ingest.items(),
    ]  # fmt: skip
    response = receiver.client.post("/v1/cloudevents", content=b"{}", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["field"] == "ce-subject"


@pytest.mark.parametrize("content", [b"[]", b" [ ] "])
def test_an_empty_cloudevents_batch_stores_nothing(receiver: Receiver, content: bytes) -> None:
    before = receiver.count()
    response = receiver.body(content, BATCH)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [], "created": 0, "duplicates": 0, "ignored": 0}
    assert receiver.count() == before


def test_an_empty_events_batch_stores_nothing(receiver: Receiver) -> None:
    before = receiver.count()
    response = receiver.client.post(
        "/v1/events/batch", json={"events": []}, headers=receiver.ingest
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [], "created": 0, "duplicates": 0}
    assert receiver.count() == before


EVENT = '"specversion": "1.0", "id": "%s", "source": "/shop", "type": "t.x"'
DUPLICATES = [
    ("structured, an attribute", STRUCTURED, '{%s, "subject": "a", "subject": "b"}', "subject"),
    ("structured, in data", STRUCTURED, '{%s, "data": {"k": {"x": 1, "x": 2}}}', "data.k.x"),
    ("batch, the second event", BATCH, '[{%s}, {%s, "type": "t.y"}]', "[1].type"),
]


@pytest.mark.parametrize(("case", "content_type", "template", "field"), DUPLICATES)
def test_a_key_given_twice_is_a_400_naming_it(
    receiver: Receiver, case: str, content_type: str, template: str, field: str
) -> None:
    events = template.count("%s")
    body = (template % tuple(EVENT % f"dup-{case}-{n}" for n in range(events))).encode()
    response = receiver.body(body, content_type)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["field"] == field


def test_binary_json_data_with_a_key_given_twice_is_refused(receiver: Receiver) -> None:
    response = receiver.binary("dup-data", body=b'{"order": 1, "order": 2}')
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"] == [
        {"field": "data.order", "message": "duplicate key 'order'"}
    ]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/events", b'{"action": "a", "action": "b"}', "action"),
        ("/v1/events", b'{"action": "a", "context": {"ip": "1", "ip": "2"}}', "context.ip"),
        ("/v1/events/batch", b'{"events": [{"action": "a", "action": "b"}]}', "events[0].action"),
    ],
)
def test_the_events_api_refuses_a_key_given_twice(
    receiver: Receiver, path: str, body: bytes, field: str
) -> None:
    before = receiver.count()
    headers = {**receiver.ingest, "content-type": "application/json"}
    response = receiver.client.post(path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field
    key = field.rsplit(".", maxsplit=1)[-1].rsplit("]", maxsplit=1)[-1]
    assert repr(key) in error["message"]
    assert receiver.count() == before

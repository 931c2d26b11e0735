"""Search, paging, get, export, metrics and the OpenAPI document over a real
SQLite store."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from auditlake.runtime import Services
from auditlake.web.app import create_app


@pytest.fixture
def client(services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    with TestClient(create_app(services)) as test_client:
        yield test_client, {"authorization": f"Bearer {secret}"}


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"e{n:03d}",
        "action": fields.pop("action", "user.signed_in"),
        "occurred_at": f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        "actor": fields.pop("actor", {"id": f"u{n % 3}", "type": "user", "name": f"User {n}"}),
        "targets": fields.pop("targets", [{"id": f"t{n % 2}", "type": "team"}]),
        **fields,
    }


def publish(client: TestClient, headers: dict[str, str], events: list[dict[str, Any]]) -> None:
    response = client.post("/v1/events/batch", json={"events": events}, headers=headers)
    assert response.status_code == 201, response.text


def ids(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["data"]]


def test_filters(client: tuple[TestClient, dict[str, str]]) -> None:
    api, headers = client
    publish(api, headers, [event(n) for n in range(6)])
    publish(
        api,
        headers,
        [
            event(10, action="monitor.down", actor={"id": "bot", "type": "service"},
                  metadata={"region": "gru"}, error={"code": "E1", "message": "timeout"}),
            event(11, action="user.deleted", targets=[{"id": "repo-9", "type": "repo"}],
                  metadata={"note": "Quarterly cleanup"}),
        ],
    )  # fmt: skip
    assert ids(api, headers, action="monitor.down") == ["e010"]
    assert ids(api, headers, action="user.*", limit=3) == ["e011", "e005", "e004"]
    assert ids(api, headers, actor_id="u1") == ["e004", "e001"]
    assert ids(api, headers, actor_type="service") == ["e010"]
    assert ids(api, headers, target_id="repo-9") == ["e011"]
    assert ids(api, headers, target_type="repo") == ["e011"]
    assert ids(api, headers, outcome="failure") == ["e010"]
    assert len(ids(api, headers, source="api")) == 8
    assert ids(api, headers, source="cloudevents:x") == []
    since, until = "2024-01-01T00:00:02Z", "2024-01-01T00:00:04Z"
    assert ids(api, headers, since=since, until=until, order="asc") == ["e002", "e003"]
    assert ids(api, headers, q="gru") == ["e010"]
    assert ids(api, headers, q="quarterly") == ["e011"]  # case-insensitive, word prefix
    assert ids(api, headers, q="User 3") == ["e003"]
    assert ids(api, headers, q="timeout", outcome="failure") == ["e010"]
    assert ids(api, headers, q="...") == []


def test_cursor_pages_cover_everything_once_while_new_events_arrive(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    api, headers = client
    publish(api, headers, [event(n) for n in range(25)])
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        body = api.get("/v1/events", params=params, headers=headers).json()
        seen += [e["id"] for e in body["data"]]
        if len(seen) == 10:  # newer events arrive between pages: they sort before the cursor
            publish(api, headers, [event(n) for n in range(100, 105)])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [f"e{n:03d}" for n in range(24, -1, -1)]


def test_duplicates_are_reported_not_stored(client: tuple[TestClient, dict[str, str]]) -> None:
    api, headers = client
    batch = {"events": [event(n) for n in range(5)]}
    first = api.post("/v1/events/batch", json=batch, headers=headers).json()
    again = api.post("/v1/events/batch", json=batch, headers=headers)
    assert first["created"] == 5
    assert again.status_code == 200
    assert again.json()["duplicates"] == 5 and again.json()["created"] == 0
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 5
    keyed = {**headers, "idempotency-key": "order-77"}
    one = api.post("/v1/events", json={"action": "order.paid"}, headers=keyed)
    two = api.post("/v1/events", json={"action": "order.paid"}, headers=keyed)
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["id"] == two.json()["id"] and two.json()["status"] == "duplicate"
    assert len(ids(api, headers, limit=100)) == 6


def test_ids_with_slashes_and_spaces_can_be_fetched(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    api, headers = client
    publish(api, headers, [{"id": "repo/a b/c", "action": "x"}])
    found = api.get("/v1/events/repo%2Fa%20b%2Fc", headers=headers)
    assert found.status_code == 200 and found.json()["id"] == "repo/a b/c"


def test_export_ndjson_and_csv_stream_every_matching_event(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    api, headers = client
    for start in range(0, 2500, 1000):
        publish(
            api,
            headers,
            [event(n, occurred_at=None) for n in range(start, min(start + 1000, 2500))],
        )
    publish(api, headers, [event(9000, action="=cmd|' /C calc'!A0", occurred_at=None)])
    ndjson = api.get("/v1/export", params={"action": "user.*"}, headers=headers)
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson.content.splitlines()
    assert len(lines) == 2500 and len({msgspec.json.decode(x)["id"] for x in lines}) == 2500
    exported = api.get("/v1/export", params={"format": "csv"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 2501
    assert [r["action"] for r in rows if r["id"] == "e9000"] == ["'=cmd|' /C calc'!A0"]


def test_metrics_count_events_and_commits(client: tuple[TestClient, dict[str, str]]) -> None:
    api, headers = client
    publish(api, headers, [event(n) for n in range(3)])
    api.post("/v1/events/batch", json={"events": [event(n) for n in range(3)]}, headers=headers)
    api.post("/v1/events", json={"action": 1}, headers=headers)
    text = api.get("/metrics").text
    assert 'auditlake_events_total{result="accepted",source="api"} 3.0' in text
    assert 'auditlake_events_total{result="duplicate",source="api"} 3.0' in text
    assert 'auditlake_events_total{result="rejected",source="api"} 1.0' in text
    assert "auditlake_group_commit_events_count 2.0" in text
    assert (
        'auditlake_request_seconds_count{method="POST",route="publish_batch",status="201"}' in text
    )


def test_openapi_describes_every_route(services: Services) -> None:
    app = create_app(services, manage_lifecycle=False)
    document = TestClient(app).get("/openapi.json").json()
    for route in app.routes:
        assert isinstance(route, Route)
        path = route.path.replace(":path", "")
        assert path in document["paths"], path
        for method in route.methods or ():
            if method not in {"HEAD", "OPTIONS"}:  # answered for every path alike
                assert method.lower() in document["paths"][path]
    schemas = document["components"]["schemas"]
    assert set(schemas["EventInput"]["properties"]) >= {
        "action",
        "occurred_at",
        "timestamp",
        "actor",
    }
    assert schemas["EventInput"]["required"] == ["action"]

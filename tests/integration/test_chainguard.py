"""Chainguard registry events through the `chainguard` preset: OIDC tokens
from a local issuer, the pull-event mapping, search, and the typed table."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from starlette.testclient import TestClient
from tests.fixtures import FIXTURES
from tests.issuer import LocalIssuer

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.sqlite_db import connect
from auditlake.vendors.chainguard import PULL_TYPE, PUSH_TYPE
from auditlake.web.app import create_app

GROUP = "0475f6baca584a8964a6bce6b74dbe78dd8805b6"


def pull_data(repository: str, *, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """The documented pull body (shared sample) with real-looking values."""
    data = copy.deepcopy(json.loads((FIXTURES / "chainguard-pull-body.json").read_text()))
    data["actor"]["subject"] = "user:7d1a"
    data["body"].update(
        repository=repository,
        repo_id=f"{GROUP}/repo-{repository}",
        digest="sha256:" + "ab" * 32,
        user_agent="containerd/2.0",
        remote_address="198.51.100.7",
        error=error,
    )
    return data


def pull(repository: str, event_id: str, **options: Any) -> CloudEvent:
    return CloudEvent(
        attributes={
            "type": options.pop("type", PULL_TYPE),
            "source": "cgr.dev",
            "id": event_id,
            "subject": f"{GROUP}/repo-{repository}",
            "time": datetime(2026, 7, 22, 19, 49, 20, 277508, tzinfo=UTC),
            "group": GROUP,
            "audience": "customer",
        },
        data=pull_data(repository, **options),
    )


@pytest.fixture
def client(tmp_path: Path, issuer: LocalIssuer) -> Iterator[TestClient]:
    source = {
        "name": "chainguard",
        "tenant": "platform",
        "preset": "chainguard",
        "group": GROUP,
        # Chainguard's issuer is https://issuer.enforce.dev; the test plays it.
        "oidc": {"issuer": issuer.url, "audience": "customer"},
    }
    overrides = {"data_dir": str(tmp_path / "data"), "sources": {"cloudevents": [source]}}
    services = build_services(load_settings(env={}, overrides=overrides))
    app = create_app(services)
    app.state.read_key = services.keys.create("platform", ["read"], "t")[1]
    with TestClient(app) as test_client:
        yield test_client


def send(client: TestClient, event: CloudEvent, token: str | None) -> Any:
    message = to_binary(event, JSONFormat())
    auth = {"authorization": f"Bearer {token}"} if token else {}
    return client.post("/v1/cloudevents", content=message.body, headers={**message.headers, **auth})


def search(client: TestClient, **params: str) -> list[dict[str, Any]]:
    headers = {"authorization": f"Bearer {client.app.state.read_key}"}  # type: ignore[attr-defined]
    response = client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_a_failed_pull_is_found_by_outcome_and_repository(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.token(f"webhook:{GROUP}")
    denied = {"status": 403, "code": "DENIED", "message": "pull access denied"}
    assert send(client, pull("nginx", "p-1", error=denied), token).status_code == 201
    assert send(client, pull("nginx", "p-2"), token).status_code == 201
    ok_status_zero = {"status": 0, "code": "", "message": ""}
    assert send(client, pull("python", "p-3", error=ok_status_zero), token).status_code == 201

    failed = search(client, outcome="failure", q="nginx")
    assert len(failed) == 1
    event = failed[0]
    assert event["action"] == PULL_TYPE and event["source"] == "cloudevents:cgr.dev"
    assert event["actor"]["id"] == "user:7d1a"
    assert {(t["type"], t["id"]) for t in event["targets"]} == {
        ("repository", f"{GROUP}/repo-nginx"),
        ("tag", "nginx:latest"),
        ("digest", "sha256:" + "ab" * 32),
    }
    assert event["context"]["ip"] == "198.51.100.7"
    assert event["context"]["location"] == "ColumbusOHUS"
    assert event["error"] == {"code": "DENIED", "message": "pull access denied"}
    assert event["caller"] == f"oidc:webhook:{GROUP}"
    assert len(search(client, outcome="success")) == 2
    assert len(search(client, target_type="repository", target_id=f"{GROUP}/repo-nginx")) == 2


def test_the_typed_table_has_chainguards_pull_columns(
    client: TestClient, issuer: LocalIssuer, tmp_path: Path
) -> None:
    token = issuer.token(f"webhook:{GROUP}")
    denied = {"status": 401, "code": "UNAUTHORIZED", "message": "authentication required"}
    assert send(client, pull("redis", "t-1", error=denied), token).status_code == 201
    search(client)  # waits until the recorder has indexed what was acknowledged
    store = connect(tmp_path / "data" / "store.db", wal=False)
    try:
        cursor = store.execute("SELECT * FROM chainguard_registry_pull_v1")
        columns = [d[0] for d in cursor.getdescription()]
        rows = cursor.fetchall()
    finally:
        store.close()
    assert columns == [
        "seq", "tenant", "event_id", "occurred_us", "actor_subject", "actor_act", "repository",
        "repo_id", "tag", "digest", "method", "type", "when", "location", "user_agent",
        "remote_address", "error_status", "error_code", "error_message",
    ]  # fmt: skip
    row = dict(zip(columns, rows[0], strict=True))
    assert row["tenant"] == "platform" and row["repository"] == "redis"
    assert (row["method"], row["type"], row["tag"]) == ("GET", "manifest", "latest")
    assert row["when"] == "2026-07-22T19:49:20.275672"
    assert (row["error_status"], row["error_code"]) == (401, "UNAUTHORIZED")
    assert row["user_agent"] == "containerd/2.0" and row["actor_subject"] == "user:7d1a"


def test_push_events_are_acknowledged_and_dropped(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.token(f"webhook:{GROUP}")
    response = send(client, pull("nginx", "push-1", type=PUSH_TYPE), token)
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert search(client) == []


def test_tokens_are_checked(client: TestClient, issuer: LocalIssuer) -> None:
    event = pull("nginx", "a-1")
    assert send(client, event, None).status_code == 401
    assert send(client, event, issuer.token("webhook:someone-else")).status_code == 403
    assert send(client, event, issuer.token(f"webhook:{GROUP}x")).status_code == 403
    expired = issuer.token(f"webhook:{GROUP}", exp=1_700_000_000)
    assert send(client, event, expired).status_code == 403
    wrong_audience = issuer.token(f"webhook:{GROUP}", aud="someone")
    assert send(client, event, wrong_audience).status_code == 403
    sub_group = issuer.token(f"webhook:{GROUP}/5a2c9e")
    assert send(client, event, sub_group).status_code == 201
    assert search(client) != []


def test_an_issuer_written_with_a_trailing_slash_is_the_same_issuer(issuer: LocalIssuer) -> None:
    from auditlake.source_settings import OidcAuth
    from auditlake.web.oidc import OidcVerifier

    verifier = OidcVerifier(OidcAuth(issuer=issuer.url + "/", audience="customer"))
    claims = verifier.verify(f"Bearer {issuer.token('webhook:x')}")
    assert claims["iss"] == issuer.url

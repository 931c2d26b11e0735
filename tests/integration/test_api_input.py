"""Bad input gets the documented 4xx with a JSON error body, nothing of it is
stored, and the server stays healthy afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from auditlake.runtime import Services
from auditlake.web.app import create_app


class Api:
    def __init__(self, client: TestClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.ingest = self.key("acme", "ingest")
        self.read = self.key("acme", "read")
        self.both = self.key("acme", "ingest", "read")

    def key(self, tenant: str, *scopes: str) -> dict[str, str]:
        secret = self.services.keys.create(tenant, list(scopes), "t")[1]  # type: ignore[arg-type]
        return {"authorization": f"Bearer {secret}"}

    def stored(self) -> int:
        body = self.client.get("/v1/events", params={"limit": 1000}, headers=self.both).json()
        return len(body["data"])


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with TestClient(create_app(services)) as client:
        yield Api(client, services)


def assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]  # type: ignore[no-any-return]


def assert_still_healthy(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 200
    ok = api.client.post("/v1/events", json={"action": "still.ok"}, headers=api.ingest)
    assert ok.status_code == 201


CASES = [
    ("malformed json", "/v1/events", b'{"action": ', 400, "malformed"),
    ("not utf-8", "/v1/events", b'{"action": "\xff\xfe\xfd"}', 400, "malformed"),
    ("wrong type", "/v1/events", b'{"action": 12}', 422, "invalid"),
    ("missing action", "/v1/events", b'{"actor": {"id": "u"}}', 422, "invalid"),
    ("unknown field", "/v1/events", b'{"action": "a", "colour": "red"}', 422, "invalid"),
    ("received_at set", "/v1/events", b'{"action": "a", "received_at": "x"}', 422, "invalid"),
    ("not an object", "/v1/events", b"[1, 2]", 422, "invalid"),
    (
        "deep nesting",
        "/v1/events",
        b'{"action":"a","metadata":{"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        400,
        "malformed",
    ),
    (
        "metadata over cap",
        "/v1/events",
        json.dumps({"action": "a", "metadata": {"k": "x" * 70_000}}).encode(),
        422,
        "invalid",
    ),
    (
        "1001 events",
        "/v1/events/batch",
        json.dumps({"events": [{"action": "a"}] * 1001}).encode(),
        422,
        "invalid",
    ),
    (
        "oversize event body",
        "/v1/events",
        b'{"action":"' + b"a" * (1 << 20) + b'"}',
        413,
        "too_large",
    ),
    (
        "oversize batch body",
        "/v1/events/batch",
        b'{"events":[{"action":"' + b"a" * (17 << 20) + b'"}]}',
        413,
        "too_large",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    api: Api, path: str, body: bytes, status: int, code: str
) -> None:
    response = api.client.post(path, content=body, headers=api.ingest)
    assert_error(response, status, code)
    assert api.stored() == 0
    assert_still_healthy(api)


def test_invalid_batch_names_index_and_field_of_every_problem_and_stores_nothing(api: Api) -> None:
    events = [{"action": "ok"}, {"action": 5}, {"action": "a", "bogus": 1}, {"action": "fine"}]
    error = assert_error(
        api.client.post("/v1/events/batch", json={"events": events}, headers=api.ingest),
        422,
        "invalid",
    )
    assert {(d["index"], d["field"]) for d in error["details"]} == {(1, "action"), (2, "bogus")}  # type: ignore[union-attr,index]
    assert api.stored() == 0


def test_control_characters_are_stored_verbatim_and_returned_as_json_escapes(api: Api) -> None:
    name = "nul\x00 cr\r lf\n esc\x1b[31m red"
    event = {"id": "ctl", "action": "user.renamed", "actor": {"id": "u1", "name": name}}
    assert api.client.post("/v1/events", json=event, headers=api.ingest).status_code == 201
    response = api.client.get("/v1/events/ctl", headers=api.read)
    assert b"\x1b" not in response.content and b"\x00" not in response.content
    assert b"\\u001b" in response.content
    assert response.json()["actor"]["name"] == name


def test_scopes_and_keys(api: Api) -> None:
    assert_error(api.client.post("/v1/events", json={"action": "a"}), 401, "unauthenticated")
    bad = {"authorization": "Bearer al_000000000000_" + "x" * 43}
    assert_error(api.client.get("/v1/events", headers=bad), 401, "unauthenticated")
    assert_error(
        api.client.get("/v1/events", headers={"authorization": "Basic abc"}), 401, "unauthenticated"
    )
    assert_error(
        api.client.post("/v1/events", json={"action": "a"}, headers=api.read), 403, "forbidden"
    )
    assert_error(api.client.get("/v1/events", headers=api.ingest), 403, "forbidden")
    assert_error(api.client.get("/v1/events/x", headers=api.ingest), 403, "forbidden")
    assert_still_healthy(api)


def test_revoked_key_is_refused(api: Api) -> None:
    secret = api.services.keys.create("acme", ["read"], "gone")
    headers = {"authorization": f"Bearer {secret[1]}"}
    assert api.client.get("/v1/events", headers=headers).status_code == 200
    api.services.keys.revoke(secret[0].key_id)
    assert_error(api.client.get("/v1/events", headers=headers), 401, "unauthenticated")


def test_tenants_are_isolated(api: Api) -> None:
    other = api.key("other", "ingest", "read")
    event = {"id": "secret-1", "action": "user.signed_in"}
    assert api.client.post("/v1/events", json=event, headers=other).status_code == 201
    assert_error(api.client.get("/v1/events/secret-1", headers=api.read), 404, "not_found")
    assert api.client.get("/v1/events", headers=api.read).json()["data"] == []
    assert_error(
        api.client.get("/v1/events", params={"tenant": "other"}, headers=api.read), 403, "forbidden"
    )
    assert_error(
        api.client.post("/v1/events", json={**event, "tenant": "other"}, headers=api.ingest),
        403,
        "forbidden",
    )
    # The same id in another tenant is a different event.
    assert api.client.post("/v1/events", json=event, headers=api.ingest).status_code == 201


def test_admin_key_may_name_the_tenant(api: Api) -> None:
    admin = api.key("ops", "admin")
    event = {"id": "adm-1", "action": "a", "tenant": "acme"}
    assert api.client.post("/v1/events", json=event, headers=admin).status_code == 201
    assert api.client.get("/v1/events/adm-1", headers=api.read).json()["tenant"] == "acme"
    found = api.client.get("/v1/events/adm-1", params={"tenant": "acme"}, headers=admin)
    assert found.status_code == 200
    assert_error(api.client.get("/v1/events/adm-1", headers=admin), 404, "not_found")


def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    assert_error(api.client.get("/v2/nothing"), 404, "not_found")
    assert_error(api.client.delete("/v1/events", headers=api.both), 405, "method_not_allowed")


def test_bad_idempotency_key_and_query_parameters(api: Api) -> None:
    headers = {**api.ingest, "idempotency-key": "x" * 300}
    error = assert_error(
        api.client.post("/v1/events", json={"action": "a"}, headers=headers), 400, "malformed"
    )
    assert error["details"] == [{"field": "Idempotency-Key", "message": "invalid length"}]
    # Every malformed or unacceptable query parameter: one status, naming it.
    for params in (
        {"limit": "5000"}, {"limit": "ten"}, {"cursor": "garbage"}, {"x": "1"},
        {"order": "up"}, {"outcome": "maybe"}, {"format": "csv"}, {"since": "nope"},
        {"tenant": "acme\n"}, {"q": "x" * 300},
    ):  # fmt: skip
        error = assert_error(
            api.client.get("/v1/events", params=params, headers=api.read), 400, "malformed"
        )
        assert [d["field"] for d in error["details"]] == list(params), error
    for params in ({"format": "xml"}, {"limit": "5"}, {"cursor": "c"}, {"until": "x"}):
        error = assert_error(
            api.client.get("/v1/export", params=params, headers=api.read), 400, "malformed"
        )
        assert [d["field"] for d in error["details"]] == list(params), error


GETS = ["/v1/events", "/v1/export", "/v1/events/some-id", "/v1/events/batch"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("since=1s&since=1000d", "since"),  # was: the last one silently won
        ("format=ndjson&format=csv", "format"),
        ("tenant=acme&tenant=acme", "tenant"),  # even the same value twice
        ("since=", "since"),  # was: taken as no since at all
        ("until=%20", "until"),
        ("limit=", "limit"),
        ("order=", "order"),
        ("cursor=", "cursor"),
        ("tenant=", "tenant"),
        ("action=", "action"),
    ],
)
def test_an_ambiguous_query_string_is_a_400_naming_the_parameter(
    api: Api, query: str, name: str
) -> None:
    for path in GETS:
        response = api.client.get(f"{path}?{query}", headers=api.read)
        error = assert_error(response, 400, "malformed")
        assert name in error["message"]
        assert [d["field"] for d in error["details"]] == [name]
        if query in ("since=", "until=%20"):  # an empty bound names the accepted forms
            assert "RFC 3339" in error["message"] and "7d" in error["message"]


def test_get_by_id_takes_only_tenant(api: Api) -> None:
    error = assert_error(
        api.client.get("/v1/events/some-id", params={"since": "1h"}, headers=api.read),
        400,
        "malformed",
    )
    assert error["details"] == [{"field": "since", "message": "unknown parameter"}]
    missing = api.client.get("/v1/events/some-id", params={"tenant": "acme"}, headers=api.read)
    assert_error(missing, 404, "not_found")


def test_keys_never_appear_in_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    secret = api.both["authorization"].split()[1]
    api.client.post("/v1/events", json={"action": "a"}, headers=api.both)
    api.client.post("/v1/events", content=b"{", headers=api.both)
    api.client.get("/v1/events", headers={"authorization": f"Bearer {secret}x"})
    api.client.get("/v1/events", params={"limit": "x"}, headers=api.both)
    assert caplog.records  # something was logged to look at
    assert secret not in caplog.text and secret[-20:] not in caplog.text

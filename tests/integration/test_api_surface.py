"""The API surface: names checked whole at every entry point, every stored id
fetchable (no fixed route shadows one), and 404 / 405 / OPTIONS that name
exactly what each path serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.conftest import LiveServer
from typer.testing import CliRunner

from auditlake.client import Client, id_segment
from auditlake.errors import InvalidInput
from auditlake.keys.sqlite import SqliteKeyStore
from auditlake.runtime import Services
from auditlake.web.app import create_app

# Each passed a `re.match(r"^...$")` check or looks like a valid name.
BAD_TENANTS = [
    "acme\n",
    "acme\r\n",
    "acme\x00",
    "acme ",
    " acme",
    "\u0430cme",  # Cyrillic a
    "\uff41cme",  # fullwidth a
    "acme\u2028",
    "a" * 129,
    "",
]


class Api:
    def __init__(self, client: TestClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.admin = self.key("acme", "admin")
        self.read = self.key("acme", "read")

    def key(self, tenant: str, *scopes: str) -> dict[str, str]:
        secret = self.services.keys.create(tenant, list(scopes), "t")[1]  # type: ignore[arg-type]
        return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    with TestClient(create_app(services)) as client:
        yield Api(client, services)


def assert_bad_tenant(response: object) -> None:
    # A query parameter out of its form: 400, like every other.
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "malformed" and "tenant" in error["message"]
    assert [d["field"] for d in error["details"]] == ["tenant"]


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
def test_a_bad_tenant_is_refused_at_every_http_entry_point(api: Api, tenant: str) -> None:
    body = {"action": "a", "tenant": tenant}
    published = api.client.post("/v1/events", json=body, headers=api.admin)
    assert published.status_code == 422, published.text
    assert [d["field"] for d in published.json()["error"]["details"]] == ["tenant"]
    for path in ("/v1/events", "/v1/export", "/v1/events/some-id"):
        for headers in (api.admin, api.read):  # the name is checked before the scope
            assert_bad_tenant(api.client.get(path, params={"tenant": tenant}, headers=headers))
    stored = api.client.get("/v1/events", headers=api.admin).json()["data"]
    assert stored == []


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
def test_keys_create_refuses_a_bad_tenant(tmp_path: Path, tenant: str) -> None:
    from auditlake.cli import app as cli  # the whole CLI, as `auditlake` runs it

    data_dir = tmp_path / "data"
    args = ["keys", "create", "--tenant", tenant, "--data-dir", str(data_dir)]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, InvalidInput), result.output
    # The rejected name as repr (`'acme\\n'` shows its newline) and the whole rule.
    assert repr(tenant) in result.exception.message
    assert "starting with a letter or digit" in result.exception.message
    with pytest.raises(InvalidInput):
        SqliteKeyStore(data_dir / "keys.db").create(tenant, ["read"], "t")
    assert SqliteKeyStore(data_dir / "keys.db").list() == []


def test_a_valid_awkward_tenant_exports_under_a_safe_filename(api: Api) -> None:
    tenant = "A.b_c:d-9"
    body = {"action": "a", "tenant": tenant}
    assert api.client.post("/v1/events", json=body, headers=api.admin).status_code == 201
    exported = api.client.get("/v1/export", params={"tenant": tenant}, headers=api.admin)
    assert exported.status_code == 200 and len(exported.text.splitlines()) == 1
    assert exported.headers["content-disposition"] == (
        'attachment; filename="auditlake-A.b_c_d-9.ndjson"; '
        "filename*=UTF-8''auditlake-A.b_c%3Ad-9.ndjson"
    )


AWKWARD_IDS = [
    "export",
    "batch",
    "batch/",
    "a/b",
    "/leading",
    "..",
    ".",
    "%2F",
    "a b",
    "?q=1#frag",
    "ünï©ødé 😀",
    "x" * 256,
    "é" * 256,  # the longest id, 512 UTF-8 bytes
]


def test_every_stored_id_can_be_fetched_over_http(live_server: LiveServer) -> None:
    key = live_server.key("acme", "ingest", "read")
    with Client(live_server.url, key) as client:
        client.publish_many([{"id": i, "action": "odd.id"} for i in AWKWARD_IDS])
        fetched = [client.get(event_id).id for event_id in AWKWARD_IDS]
    assert fetched == AWKWARD_IDS


def test_an_id_is_one_encoded_path_segment() -> None:
    assert id_segment("a/b") == "a%2Fb"
    assert id_segment("..") == "%2E%2E" and id_segment(".") == "%2E"
    assert id_segment("a.b") == "a.b"
    assert id_segment("%2F") == "%252F"


# (method, path, status, Allow or None)
METHOD_CASES = [
    ("POST", "/v1/events/batch/", 404, None),
    ("GET", "/v1/events/batch/", 404, None),
    ("GET", "/v1/events/", 404, None),
    ("GET", "/v1/events/a/b", 404, None),
    ("POST", "/v1/events/", 404, None),
    ("POST", "/v1/events/x/", 404, None),
    ("GET", "/v1/nothing", 404, None),
    ("GET", "/healthz/", 404, None),
    ("DELETE", "/v1/events", 405, "GET, HEAD, OPTIONS, POST"),
    ("PUT", "/v1/events/batch", 405, "GET, HEAD, OPTIONS, POST"),
    ("POST", "/v1/events/some-id", 405, "GET, HEAD, OPTIONS"),
    ("DELETE", "/v1/events/some-id", 405, "GET, HEAD, OPTIONS"),
    ("POST", "/v1/export", 405, "GET, HEAD, OPTIONS"),
    ("POST", "/healthz", 405, "GET, HEAD, OPTIONS"),
    ("PATCH", "/openapi.json", 405, "GET, HEAD, OPTIONS"),
    ("OPTIONS", "/v1/events", 204, "GET, HEAD, OPTIONS, POST"),
    ("OPTIONS", "/v1/events/batch", 204, "GET, HEAD, OPTIONS, POST"),
    ("OPTIONS", "/v1/events/a%2Fb", 204, "GET, HEAD, OPTIONS"),
    ("OPTIONS", "/v1/export", 204, "GET, HEAD, OPTIONS"),
    ("OPTIONS", "/metrics", 204, "GET, HEAD, OPTIONS"),
    ("OPTIONS", "/v1/events/batch/", 404, None),
    ("HEAD", "/healthz", 200, None),
]


@pytest.mark.parametrize(("method", "path", "status", "allow"), METHOD_CASES)
def test_paths_answer_404_and_methods_405_with_what_is_served(
    api: Api, method: str, path: str, status: int, allow: str | None
) -> None:
    response = api.client.request(method, path, headers=api.read)
    assert response.status_code == status, response.text
    assert response.headers.get("allow") == allow
    if status >= 400:
        code = {404: "not_found", 405: "method_not_allowed"}[status]
        assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("segment", ["%FF", "%C0%AF", "%E2%82", "a%FFb", "%ED%A0%80"])
def test_an_id_segment_that_is_not_utf8_is_no_event(api: Api, segment: str) -> None:
    """Read with replacement, each of these was the id U+FFFD (several
    segments, one id); no stored id can be them: 404."""
    ingest = api.key("acme", "ingest")
    for event_id in ("\ufffd", "a\ufffdb", "\ufffd\ufffd"):
        body = {"id": event_id, "action": "replacement.char"}
        assert api.client.post("/v1/events", json=body, headers=ingest).status_code == 201
    response = api.client.get(f"/v1/events/{segment}", headers=api.read)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert api.client.get("/v1/events/%EF%BF%BD", headers=api.read).status_code == 200


def test_a_405_is_counted_under_its_path_not_the_dispatcher(api: Api) -> None:
    for method, path in (("DELETE", "/v1/events"), ("POST", "/v1/events/x"), ("PUT", "/healthz")):
        assert api.client.request(method, path, headers=api.read).status_code == 405
    text = api.client.get("/metrics").text
    assert "_dispatch" not in text
    for method, route in (
        ("DELETE", "/v1/events"),
        ("POST", "/v1/events/{event_id}"),
        ("PUT", "/healthz"),
    ):
        assert f'method="{method}",route="{route}",status="405"' in text, text


def test_the_event_called_batch_and_the_batch_route_share_a_path(api: Api) -> None:
    ingest = api.key("acme", "ingest")
    event = {"events": [{"id": "batch", "action": "named.batch"}]}
    assert api.client.post("/v1/events/batch", json=event, headers=ingest).status_code == 201
    fetched = api.client.get("/v1/events/batch", headers=api.read)
    assert fetched.status_code == 200 and fetched.json()["action"] == "named.batch"

"""/openapi.json describes the CloudEvents receiver of every configured source."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.web.app import create_app
from auditlake.web.openapi import openapi_document
from auditlake.web.routing import EventIdRoute, Resource

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes, no..!").decode()
SOURCES: list[dict[str, Any]] = [
    {
        "name": "shop",
        "tenant": "acme",
        "types": ["com.example.order.*"],
        "allowed_origins": ["events.example.com"],
    },
    {"name": "hooks", "tenant": "acme", "path": "/hooks", "webhook": {"secret_env": "S"}},
    {"name": "cg", "tenant": "acme", "path": "/chainguard", "preset": "chainguard", "group": "g1"},
]
# path -> (security scheme, a kept type named in the description)
EXPECTED = {
    "/v1/cloudevents": ("apiKey", "com.example.order.*"),
    "/hooks": ("webhookSignature", "every type"),
    "/chainguard": ("oidcToken", "dev.chainguard.registry.pull.v1"),
}
CONTENT_TYPES = {
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "*/*",
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The app of three sources (one per auth) and the document it serves."""
    settings = load_settings(
        env={"S": SECRET},
        overrides={"data_dir": str(tmp_path / "data"), "sources": {"cloudevents": SOURCES}},
    )
    app = create_app(build_services(settings), manage_lifecycle=False)
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    yield app, response.json()


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The value a local `$ref` points at (a KeyError if it dangles)."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` in a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def served_methods(app: Any) -> Iterator[tuple[str, set[str]]]:
    """Each path of the app and the methods it has handlers for."""
    for route in app.routes:
        assert isinstance(route, Resource)
        yield route.path, set(route.table.handlers)
        if isinstance(route, EventIdRoute):
            for segment, table in route.fixed.items():
                yield route.prefix + segment, set(table.handlers)


def test_every_route_is_documented_and_every_ref_resolves(served: Any) -> None:
    app, document = served
    assert document["openapi"] == "3.1.0"
    for path, methods in served_methods(app):
        for method in methods - {"HEAD"}:  # HEAD and the default OPTIONS come with each path
            assert method.lower() in document["paths"][path], (path, method)
    found = list(refs(document))
    assert "#/components/schemas/CloudEvent" in found
    for ref in found:
        resolve(document, ref)
    schemes = document["components"]["securitySchemes"]
    for operations in document["paths"].values():
        for operation in operations.values():
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes)
            for status, response in operation["responses"].items():
                assert response["description"], status


def test_the_events_api_is_still_described(served: Any) -> None:
    _app, document = served
    assert {"/v1/events", "/v1/events/batch", "/v1/export", "/healthz"} <= set(document["paths"])
    assert document["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert {"EventInput", "Event", "AppendResult", "Error", "Page"} <= set(
        document["components"]["schemas"]
    )


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_each_receiver_has_its_modes_responses_and_security(served: Any, path: str) -> None:
    _app, document = served
    scheme, kept = EXPECTED[path]
    post = document["paths"][path]["post"]
    assert post["security"] == [{scheme: []}]
    assert kept in post["description"]
    content = post["requestBody"]["content"]
    assert set(content) == CONTENT_TYPES
    assert content["application/cloudevents+json"]["schema"] == {
        "$ref": "#/components/schemas/CloudEvent"
    }
    batch = content["application/cloudevents-batch+json"]["schema"]
    assert batch["type"] == "array"
    assert batch["items"] == {"$ref": "#/components/schemas/CloudEvent"}
    headers = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
    assert {"ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject", "ce-time"} <= set(
        headers
    )
    assert {"200", "201", "400", "401", "403", "413", "422", "503"} <= set(post["responses"])
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in ok} == {
        "AppendResult",
        "CloudEventIgnored",
        "ReceiveResult",
    }
    if scheme != "apiKey":  # token or signature auth: no talk of API keys
        for status in ("401", "403"):
            assert "key" not in post["responses"][status]["description"].lower()
    if scheme == "webhookSignature":
        assert headers["webhook-id"]["required"] and headers["webhook-timestamp"]["required"]

    options = document["paths"][path]["options"]
    assert options["security"] == []
    origin = next(p for p in options["parameters"] if p["name"] == "WebHook-Request-Origin")
    assert origin["in"] == "header" and origin["required"] is True
    assert "WebHook-Allowed-Origin" in options["responses"]["200"]["headers"]
    assert {"200", "403", "422"} <= set(options["responses"])


def test_schemas_and_security_schemes_of_the_receiver(served: Any) -> None:
    _app, document = served
    schemas = document["components"]["schemas"]
    event = schemas["CloudEvent"]
    assert event["required"] == ["specversion", "id", "source", "type"]
    assert {"subject", "time", "datacontenttype", "dataschema", "data", "data_base64"} <= set(
        event["properties"]
    )
    assert event["patternProperties"]  # extension attributes
    assert set(schemas["ReceiveResult"]["required"]) == {
        "results",
        "created",
        "duplicates",
        "ignored",
    }
    assert schemas["CloudEventIgnored"]["properties"]["status"] == {"const": "ignored"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["oidcToken"]["type"] == "http" and schemes["oidcToken"]["scheme"] == "bearer"
    signature = schemes["webhookSignature"]
    assert (signature["type"], signature["in"], signature["name"]) == (
        "apiKey",
        "header",
        "webhook-signature",
    )
    assert "webhook-id" in signature["description"]
    assert "webhook-timestamp" in signature["description"]
    assert all(scheme.get("description") for scheme in schemes.values())


def test_without_sources_the_document_has_no_receiver() -> None:
    document = openapi_document()
    assert "CloudEvent" not in document["components"]["schemas"]
    assert set(document["components"]["securitySchemes"]) == {"apiKey"}
    assert "/v1/cloudevents" not in document["paths"]


def test_the_document_is_cached_per_set_of_sources(tmp_path: Path) -> None:
    settings = load_settings(
        env={}, overrides={"data_dir": str(tmp_path), "sources": {"cloudevents": SOURCES[:1]}}
    )
    sources = settings.sources.cloudevents
    assert openapi_document(sources) is openapi_document(sources)
    assert openapi_document(sources) is not openapi_document()

"""Content-Encoding on every POST: gzip and deflate bodies are decoded before
any parser sees them, held to the body limit once decoded, and anything else
is refused with the documented status."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.core.normalize import Limits
from auditlake.web.app import create_app

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes, no..!").decode()
MAX_EVENT = Limits().max_event_bytes


class Api:
    def __init__(self, client: TestClient, ingest: str, read: str) -> None:
        self.client = client
        self.ingest = {"authorization": f"Bearer {ingest}"}
        self.read = {"authorization": f"Bearer {read}"}

    def post(self, path: str, body: bytes, encoding: str | None, **headers: str) -> Any:
        sent = {**self.ingest, "content-type": "application/json", **headers}
        if encoding is not None:
            sent["content-encoding"] = encoding
        return self.client.post(path, content=body, headers=sent)

    def event(self, event_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/events/{event_id}", headers=self.read)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    sources = [
        {"name": "shop", "tenant": "acme", "path": "/v1/cloudevents"},
        {"name": "signed", "tenant": "acme", "path": "/v1/signed", "auth": "webhook",
         "webhook": {"secret_env": "SHOP_SECRET"}},
    ]  # fmt: skip
    settings = load_settings(
        env={"SHOP_SECRET": SECRET},
        overrides={
            "data_dir": str(tmp_path_factory.mktemp("encoding") / "data"),
            "sources": {"cloudevents": sources},
        },
    )
    services = build_services(settings)
    ingest = services.keys.create("acme", ["ingest"], "t")[1]
    read = services.keys.create("acme", ["read"], "t")[1]
    with TestClient(create_app(services)) as client:
        yield Api(client, ingest, read)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "GZip": gzip.compress,  # codings are case-insensitive
    "deflate": zlib.compress,  # zlib format, as RFC 9110 defines deflate
    "deflate (raw)": raw_deflate,  # what some senders send under that name
    "gzip, two members": lambda d: gzip.compress(d[:7]) + gzip.compress(d[7:]),
    "identity": lambda d: d,
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_an_encoded_event_is_stored_decoded(api: Api, name: str) -> None:
    event = {"id": f"enc-{name}", "action": "user.signed_in", "metadata": {"how": name}}
    coding = name.split(" ", maxsplit=1)[0].rstrip(",")
    response = api.post("/v1/events", ENCODERS[name](json.dumps(event).encode()), coding)
    assert response.status_code == 201, response.text
    stored = api.event(f"enc-{name}")
    assert (stored["action"], stored["metadata"]) == ("user.signed_in", {"how": name})


def test_an_encoded_batch_is_stored_decoded(api: Api) -> None:
    events = [{"id": f"batch-gz-{n}", "action": "monitor.down"} for n in range(50)]
    body = gzip.compress(json.dumps({"events": events}).encode())
    response = api.post("/v1/events/batch", body, "gzip")
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 50
    assert api.event("batch-gz-49")["action"] == "monitor.down"


def test_a_gzipped_binary_cloudevent_keeps_its_data_decoded(api: Api) -> None:
    data = {"order": 42, "note": "zipped"}
    headers = {"ce-specversion": "1.0", "ce-id": "gz-1", "ce-source": "/shop",
               "ce-type": "com.example.order.created"}  # fmt: skip
    response = api.post("/v1/cloudevents", gzip.compress(json.dumps(data).encode()), "gzip",
                        **headers)  # fmt: skip
    assert response.status_code == 201, response.text
    stored = api.event(response.json()["id"])
    assert stored["raw"]["data"] == data
    assert "data_base64" not in stored["raw"]


def test_a_gzipped_text_cloudevent_is_text(api: Api) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "gz-2", "ce-source": "/shop",
               "ce-type": "com.example.note", "content-type": "text/plain"}  # fmt: skip
    response = api.post("/v1/cloudevents", zlib.compress("héllo".encode()), "deflate", **headers)
    assert response.status_code == 201, response.text
    assert api.event(response.json()["id"])["raw"]["data"] == "héllo"


@pytest.mark.parametrize("signed", ["decoded", "as sent"])
def test_a_webhook_signature_over_either_form_checks_out(api: Api, signed: str) -> None:
    event = {"specversion": "1.0", "id": f"sig-{signed}", "source": "/shop", "type": "t.x"}
    payload = json.dumps(event).encode()
    body = gzip.compress(payload)
    stamp = int(time.time())
    delivery = f"msg-{signed}"
    over = payload if signed == "decoded" else body
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{delivery}.{stamp}.".encode() + over, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(mac).decode()
    headers = {
        "webhook-id": delivery,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
        "content-type": "application/cloudevents+json",
    }
    response = api.client.post(
        "/v1/signed", content=body, headers={**headers, "content-encoding": "gzip"}
    )
    assert response.status_code == 201, response.text


def test_a_small_bomb_is_refused_with_413(api: Api) -> None:
    bomb = gzip.compress(b"\0" * (64 * MAX_EVENT), compresslevel=9)  # 64 MiB of zeros
    assert len(bomb) < MAX_EVENT // 10
    started = time.monotonic()
    response = api.post("/v1/events", bomb, "gzip")
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert "decompressed" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == [
        {"field": "body", "message": f"at most {MAX_EVENT} bytes", "limit": MAX_EVENT}
    ]
    assert time.monotonic() - started < 5


def test_the_batch_route_holds_the_decoded_size_to_its_own_limit(api: Api) -> None:
    events = [{"action": "a", "metadata": {"pad": "x" * 1200}}] * 1000  # 1.2 MB: over one event
    body = gzip.compress(json.dumps({"events": events}).encode())
    assert api.post("/v1/events", body, "gzip").status_code == 413
    assert api.post("/v1/events/batch", body, "gzip").status_code == 201


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


CORRUPT = {
    "not gzip at all": ("gzip", b'{"action": "a"}'),
    "truncated gzip": ("gzip", gzip.compress(b'{"action": "a"}' * 50)[:-12]),
    "a flipped byte": ("gzip", flipped(gzip.compress(b'{"action": "a"}' * 50), 12)),
    "garbage after a deflate stream": ("deflate", zlib.compress(b'{"action": "a"}') + b"junk"),
    "garbage after a gzip member": ("gzip", gzip.compress(b'{"action": "a"}') + b"junk-junk"),
    "one byte of deflate": ("deflate", b"x"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_stream_is_a_400_naming_the_coding(api: Api, case: str) -> None:
    coding, body = CORRUPT[case]
    response = api.post("/v1/events", body, coding)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed"
    assert f"not valid {coding}" in error["message"]


@pytest.mark.parametrize(
    ("header", "named"),
    [("br", "br"), ("zstd", "zstd"), ("compress", "compress"), ("gzip, br", "br"),
     ("gzip, gzip", "gzip, gzip")],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch", "/v1/cloudevents"])
def test_an_unsupported_coding_is_a_415_naming_it(
    api: Api, header: str, named: str, path: str
) -> None:
    response = api.post(path, b"\x00\x01whatever", header)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_encoding"
    # The one shape of `details`: a list of objects, here one naming the header.
    assert error["details"] == [{
        "field": "Content-Encoding", "message": error["message"],
        "encoding": named, "supported": ["gzip", "deflate", "identity"],
    }]  # fmt: skip

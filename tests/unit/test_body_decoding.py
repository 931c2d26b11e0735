"""The streaming decoder of request bodies: bounded output, whatever the input."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib

import pytest
from starlette.requests import Request

from auditlake.errors import MalformedInput, PayloadTooLarge, UnsupportedEncoding
from auditlake.web.body import Body, _Inflater, content_coding, read_body, read_body_as_sent

CAP = 100_000


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("chunk", [1, 7, 65_536])
def test_decodes_in_any_chunking(coding: str, chunk: int) -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes, under CAP
    packed = gzip.compress(data) if coding == "gzip" else zlib.compress(data)
    inflater = _Inflater(coding, CAP)
    out = [piece for part in chunks(packed, chunk) for piece in inflater.feed(part)]
    assert b"".join(out + inflater.finish()) == data


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_bomb_is_refused_holding_about_the_limit(coding: str) -> None:
    zeros = b"\0" * (200 * CAP)  # 20 MB that packs into a few KB
    packed = gzip.compress(zeros) if coding == "gzip" else zlib.compress(zeros)
    del zeros
    assert len(packed) < CAP // 4
    inflater = _Inflater(coding, CAP)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="once decompressed"):
            inflater.feed(packed)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * CAP  # never inflated much past the limit


def test_exactly_the_limit_passes() -> None:
    inflater = _Inflater("gzip", CAP)
    assert len(b"".join(inflater.feed(gzip.compress(b"a" * CAP)) + inflater.finish())) == CAP
    with pytest.raises(PayloadTooLarge):
        _Inflater("gzip", CAP).feed(gzip.compress(b"a" * (CAP + 1)))


def test_a_stream_cut_short_is_malformed() -> None:
    inflater = _Inflater("gzip", CAP)
    inflater.feed(gzip.compress(b"x" * 1000)[:-4])
    with pytest.raises(MalformedInput, match="ends before its end marker"):
        inflater.finish()


@pytest.mark.parametrize(
    ("values", "coding"),
    [([], "identity"), (["identity"], "identity"), (["GZIP"], "gzip"), (["x-gzip"], "gzip"),
     ([" deflate "], "deflate"), (["identity, gzip"], "gzip"), (["", "gzip"], "gzip")],
)  # fmt: skip
def test_the_content_coding(values: list[str], coding: str) -> None:
    assert content_coding(values) == coding


@pytest.mark.parametrize("values", [["br"], ["gzip", "deflate"], ["gzip, zstd"], ["*"]])
def test_unsupported_codings(values: list[str]) -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        content_coding(values)
    assert caught.value.status == 415
    assert caught.value.details["supported"] == ["gzip", "deflate", "identity"]


def _request(body: bytes, headers: dict[str, str]) -> Request:
    chunks_left = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> dict[str, object]:
        chunk = chunks_left.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks_left)}

    raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "headers": raw}, receive)


# Digits to str.isdigit(), not to int(): bytes B2, B9, B3 read as Latin-1, as headers are.
@pytest.mark.parametrize("declared", ["²", "¹²³", "3²"])
def test_a_content_length_of_other_digits_is_no_crash(declared: str) -> None:
    request = _request(b'{"a": 1}', {"content-length": declared})
    assert asyncio.run(read_body(request, CAP)) == b'{"a": 1}'


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    request = _request(b"x", {"content-length": str(CAP + 1)})
    with pytest.raises(PayloadTooLarge, match=f"{CAP + 1} bytes"):
        asyncio.run(read_body(request, CAP))


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_only_the_signature_route_keeps_the_bytes_as_sent(coding: str) -> None:
    data = b'{"action": "a.b"}' * 500
    packed = gzip.compress(data) if coding == "gzip" else zlib.compress(data)
    headers = {"content-encoding": coding}
    kept = asyncio.run(read_body_as_sent(_request(packed, headers), CAP))
    assert kept == Body(data, packed)
    one_copy = asyncio.run(read_body_as_sent(_request(packed, headers), CAP, keep_sent=False))
    assert one_copy == Body(data, None)
    assert asyncio.run(read_body(_request(packed, headers), CAP)) == data

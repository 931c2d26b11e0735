"""Reading a request body: held to a byte limit, its Content-Encoding decoded.

Every route that takes a body reads it here. `gzip` (and its alias `x-gzip`)
and `deflate` (RFC 9110 section 8.4.1: zlib data, or the raw deflate stream
some senders send under that name) are decoded as the body streams in, with
the *decoded* size held to the route's limit: inflating stops at the limit
plus one byte, so a small compressed bomb costs at most that much memory and
gets a 413. A stream that is not what its coding says is a 400, and a coding
not listed in SUPPORTED a 415 naming it. Compressed bytes never reach a parser.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from starlette.requests import Request

from auditlake.errors import MalformedInput, PayloadTooLarge, UnsupportedEncoding

SUPPORTED = ("gzip", "deflate", "identity")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ALIASES = {"x-gzip": "gzip"}


class Body(NamedTuple):
    """A request body: `data` as decoded, and `sent`, the bytes on the wire,
    when a Content-Encoding made them differ and they were asked for (else None)."""

    data: bytes
    sent: bytes | None


async def read_body(request: Request, cap: int) -> bytes:
    """The request body, decoded; 413 as soon as it passes `cap` bytes (sent
    or decoded), 400 for a corrupt stream, 415 for an unsupported coding."""
    return (await read_body_as_sent(request, cap, keep_sent=False)).data


async def read_body_as_sent(request: Request, cap: int, *, keep_sent: bool = True) -> Body:
    """As `read_body`; with `keep_sent` the bytes as sent are kept too when a
    coding made them differ (for a signature over them, the webhook route's
    need), else only the decoded body is held: one copy, not two."""
    coding = content_coding(request.headers.getlist("content-encoding"))
    declared = request.headers.get("content-length", "")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(f"the body is {declared} bytes, over the limit of {cap}", cap)
    decoder = _Inflater(coding, cap) if coding != "identity" else None
    sent: list[bytes] = []
    decoded: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"the body is over the limit of {cap} bytes", cap)
        if decoder is None or keep_sent:
            sent.append(chunk)
        if decoder is not None:
            decoded += decoder.feed(chunk)
    if decoder is None:
        return Body(b"".join(sent), None)
    decoded += decoder.finish()
    return Body(b"".join(decoded), b"".join(sent) if keep_sent else None)


def content_coding(values: list[str]) -> str:
    """The one content coding of the Content-Encoding header `values` (the
    header may be repeated, each a comma-separated list): "identity" when
    none; 415 for an unsupported coding or for more than one."""
    codings = [c.strip().lower() for value in values for c in value.split(",")]
    codings = [_ALIASES.get(c, c) for c in codings if c and c != "identity"]
    for coding in codings:
        if coding not in SUPPORTED:
            raise UnsupportedEncoding(
                f"Content-Encoding {coding!r} is not supported; send one of "
                + ", ".join(SUPPORTED),
                {"encoding": coding, "supported": list(SUPPORTED)},
            )
    if len(codings) > 1:
        raise UnsupportedEncoding(
            "one Content-Encoding at a time is supported, got " + ", ".join(codings),
            {"encoding": ", ".join(codings), "supported": list(SUPPORTED)},
        )
    return codings[0] if codings else "identity"


class _Inflater:
    """Streaming gzip / deflate decoding that never holds more than `cap` + 1
    decoded bytes. gzip may hold several members one after the other
    (RFC 1952); anything after a deflate stream is an error."""

    def __init__(self, coding: str, cap: int) -> None:
        self._coding = coding
        self._cap = cap
        self._size = 0
        self._head = b""  # deflate: the first bytes, until the format is known
        self._inflate: zlib._Decompress | None = None
        self._started = False  # whether any byte came in

    def feed(self, data: bytes) -> list[bytes]:
        """The decoded bytes that `data` (the next bytes sent) gives."""
        if not data:
            return []
        self._started = True
        if self._inflate is None:
            self._head += data
            if self._coding == "deflate" and len(self._head) < 2:
                return []
            self._inflate = zlib.decompressobj(self._wbits(self._head))
            data, self._head = self._head, b""
        return self._run(data)

    def finish(self) -> list[bytes]:
        """What remains once the body has ended; 400 if the stream is cut short."""
        if not self._started:
            return []  # an empty body stays empty
        out: list[bytes] = []
        if self._inflate is None:  # a deflate body of one byte
            self._inflate = zlib.decompressobj(self._wbits(self._head))
            out = self._run(self._head)
        if not self._inflate.eof:
            raise self._corrupt("the stream ends before its end marker")
        return out

    def _run(self, data: bytes) -> list[bytes]:
        assert self._inflate is not None
        out: list[bytes] = []
        while data:
            if self._inflate.eof:
                data = self._next_member(data)
            # One byte over the limit is enough to refuse: a bomb is never
            # inflated further. An output shorter than asked means zlib holds
            # nothing back, so the loop ends when the input does.
            try:
                piece = self._inflate.decompress(data, self._cap - self._size + 1)
            except zlib.error as exc:
                raise self._corrupt(str(exc)) from None
            self._size += len(piece)
            if self._size > self._cap:
                raise PayloadTooLarge(
                    f"the body is over the limit of {self._cap} bytes once decompressed", self._cap
                )
            out.append(piece)
            data = self._inflate.unconsumed_tail or self._inflate.unused_data
        return out

    def _next_member(self, data: bytes) -> bytes:
        """After one gzip member, the next one starts (deflate: nothing may follow)."""
        if self._coding != "gzip":
            raise self._corrupt("bytes follow the end of the deflate stream")
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        return data

    def _wbits(self, head: bytes) -> int:
        if self._coding == "gzip":
            return _GZIP_WBITS
        # zlib's two header bytes: method 8 (deflate), window <= 32K, and a
        # 16-bit value divisible by 31 (RFC 1950); else a raw deflate stream.
        zlib_header = (
            len(head) >= 2
            and head[0] & 0x0F == 8
            and head[0] >> 4 <= 7
            and (head[0] << 8 | head[1]) % 31 == 0
        )
        return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS

    def _corrupt(self, reason: str) -> MalformedInput:
        return MalformedInput(
            f"the body is not valid {self._coding} data ({reason})",
            [{"field": "content-encoding", "message": f"not valid {self._coding}: {reason}"}],
        )

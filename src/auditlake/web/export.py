"""GET /v1/export: every matching event, streamed page by page so
memory stays constant however large the export."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from auditlake.core.export import csv_header, csv_rows, ndjson_lines
from auditlake.core.query import MAX_LIMIT, Query, invalid_param, parse_query
from auditlake.errors import InvalidInput
from auditlake.web.auth import Authenticator, read_tenant
from auditlake.web.services import Services

# What may stand in a quoted filename as is: anything else (quotes, control
# characters, non-ASCII) would break the header or be read differently.
_PLAIN_FILENAME = re.compile(r"[^A-Za-z0-9._-]", re.ASCII)

FORMATS: dict[str, tuple[str, Callable[[list[bytes]], bytes], bytes]] = {
    "ndjson": ("application/x-ndjson", ndjson_lines, b""),
    "csv": ("text/csv; charset=utf-8", csv_rows, csv_header()),
}


class ExportRoute:
    """The export handler."""

    def __init__(self, services: Services, auth: Authenticator) -> None:
        self.services = services
        self.store = services.store
        self.auth = auth

    async def export_events(self, request: Request) -> Response:
        """Stream all events matching the search filters as NDJSON or CSV."""
        key = await self.auth.require(request, "read")
        tenant = read_tenant(request, key)
        params = dict(request.query_params)
        fmt = params.pop("format", "ndjson")
        if fmt not in FORMATS:
            raise InvalidInput("format must be ndjson or csv", [invalid_param("format")])
        for name in ("limit", "cursor"):
            if name in params:
                raise InvalidInput(f"{name} does not apply to an export", [invalid_param(name)])
        query = parse_query(tenant, params)
        query = msgspec.structs.replace(query, limit=MAX_LIMIT)
        await self.services.wait_searchable()
        media_type, render, header = FORMATS[fmt]
        return StreamingResponse(
            self._stream(query, render, header),
            media_type=media_type,
            headers={"content-disposition": attachment(f"auditlake-{tenant}.{fmt}")},
        )

    async def _stream(
        self, query: Query, render: Callable[[list[bytes]], bytes], header: bytes
    ) -> AsyncIterator[bytes]:
        if header:
            yield header
        while True:
            page = await run_in_threadpool(self.store.search, query)
            if page.events:
                yield render(page.events)
            if page.next_position is None:
                return
            query = msgspec.structs.replace(query, after=page.next_position)


def attachment(filename: str) -> str:
    """A `Content-Disposition` value naming `filename` safely (RFC 6266): an
    ASCII fallback with every other character as `_`, and the exact name
    percent-encoded as UTF-8 in `filename*`. No input byte reaches the header raw.
    """
    fallback = _PLAIN_FILENAME.sub("_", filename)
    exact = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"

"""GET /v1/export: every matching event, streamed in sub-pages of about
`PAGE_BYTES` (1 MB) that each wait for the client to take the last, so
memory stays bounded however large the export and however slow the reader.
A key runs at most `max_exports_per_key` exports at once (one more: 429).
A store read that fails after the 200 ends the export without its final
chunk: an incomplete transfer for the client, never a clean truncated file."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from auditlake.core.export import csv_header, csv_rows, ndjson_lines
from auditlake.core.query import invalid_param, parse_query
from auditlake.errors import MalformedInput
from auditlake.runtime import Services
from auditlake.web.auth import Authenticator, read_tenant
from auditlake.web.streams import PagedResponse, PageWalk, groups

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
        self.auth = auth

    async def export_events(self, request: Request) -> Response:
        """Stream all events matching the search filters as NDJSON or CSV."""
        key = await self.auth.require(request, "read")
        tenant = read_tenant(request, key)
        params = dict(request.query_params)  # one value each: read_tenant checked
        fmt = params.pop("format", "ndjson")
        if fmt not in FORMATS:
            raise MalformedInput("format must be ndjson or csv", [invalid_param("format")])
        for name in ("limit", "cursor"):
            if name in params:
                raise MalformedInput(f"{name} does not apply to an export", [invalid_param(name)])
        query = parse_query(tenant, params, now=datetime.now(UTC))
        slot = self.services.slots.hold(key.key_id, "export")
        try:
            await self.services.wait_searchable()
            walk = PageWalk(self.services.search_page, query, total=None)
            first = await walk.next()  # before the 200, so a failed search gets its status
        except BaseException:
            slot.release()
            raise
        media_type, render, header = FORMATS[fmt]
        return PagedResponse(
            _export_body(walk, first, render, header),
            media_type=media_type,
            headers={"content-disposition": attachment(f"auditlake-{tenant}.{fmt}")},
            on_close=slot.release,
        )


async def _export_body(
    walk: PageWalk, first: list[bytes], render: Callable[[list[bytes]], bytes], header: bytes
) -> AsyncGenerator[bytes, None]:
    """The header, then each sub-page of the walk rendered."""
    if header:
        yield header
    events = first
    while True:
        for group in groups(events):
            yield render(group)
        if walk.done:
            return
        events = await walk.next()


def attachment(filename: str) -> str:
    """A `Content-Disposition` value naming `filename` safely (RFC 6266): an
    ASCII fallback with every other character as `_`, and the exact name
    percent-encoded as UTF-8 in `filename*`. No input byte reaches the header raw.
    """
    fallback = _PLAIN_FILENAME.sub("_", filename)
    exact = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"

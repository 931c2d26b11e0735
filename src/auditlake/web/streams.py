"""Answers that can be large (a search page, an export) sent in bounded pieces.

What a slow or stalled reader can make the server hold is bounded: events
are read from the store in sub-pages of about `PAGE_BYTES`, and each one is
sent in pieces of at most `SLICE_BYTES` (`groups`; one larger event is a
piece of its own), every send waiting for the connection's flow control
(uvicorn's `send` awaits the transport's drain) before the next sub-page is
read. A client that hangs up stops the reading at once,
and whatever the answer held (its per-key slot, its sub-page) is let go.

A store read after the first one can still fail (`too_costly`, `Unavailable`)
once the 200 is sent. A search page then ends early as valid JSON whose
`next_cursor` resumes right after the last event sent (a short page, which
clients already handle); an export, which has no cursor, ends without its
final chunk, so the client sees an incomplete transfer and never a clean but
truncated file, and /metrics counts the error's status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping

import anyio
import msgspec
from anyio import CancelScope
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from auditlake.core.query import MAX_LIMIT, Position, Query, encode_cursor
from auditlake.errors import AuditlakeError
from auditlake.process_tuning import release_freed_memory
from auditlake.store.base import Page
from auditlake.web.metrics import CLIENT_GONE, FAILED_STATUS

log = logging.getLogger(__name__)

PAGE_BYTES = 1024 * 1024
SLICE_BYTES = 256 * 1024
# The first sub-page, before the size of this search's events is known.
FIRST_PAGE_EVENTS = 50

Fetch = Callable[[Query], Awaitable[Page]]


class PageWalk:
    """Reads up to `total` events (None: all) matching `query`, sub-page by
    sub-page, each sized so it holds about PAGE_BYTES of events."""

    def __init__(self, fetch: Fetch, query: Query, total: int | None) -> None:
        self._fetch = fetch
        self._query = query
        self._left = total
        self._next_limit = FIRST_PAGE_EVENTS
        self.done = False
        # Where the events after those read start, once the walk ended early
        # (`total` reached) with more events left; None otherwise.
        self.position: Position | None = None

    async def next(self) -> list[bytes]:
        """The next sub-page (empty once `done`)."""
        if self.done:
            return []
        limit = self._next_limit if self._left is None else min(self._left, self._next_limit)
        page = await self._fetch(msgspec.structs.replace(self._query, limit=limit))
        events = page.events
        if self._left is not None:
            self._left -= len(events)
        if events:
            largest = max(len(body) for body in events)
            self._next_limit = max(1, min(MAX_LIMIT, PAGE_BYTES // largest))
        if page.next_position is None:
            self.done = True
        elif self._left == 0:
            self.done, self.position = True, page.next_position
        else:
            self._query = msgspec.structs.replace(self._query, after=page.next_position)
        return events

    def stop_early(self) -> None:
        """End the walk where it stands (a read failed): `position` becomes
        that of the pending read, right after the last event returned."""
        self.done, self.position = True, self._query.after


def groups(events: list[bytes]) -> Iterator[list[bytes]]:
    """`events` in runs of at most SLICE_BYTES (a larger event is a run of
    its own): each run is joined into one piece and sent as it is, so no
    copy of a whole sub-page is made and nothing is sliced again."""
    run: list[bytes] = []
    size = 0
    for body in events:
        if run and size + len(body) > SLICE_BYTES:
            yield run
            run, size = [], 0
        run.append(body)
        size += len(body)
    if run:
        yield run


def whole_page(query: Query, walk: PageWalk, events: list[bytes]) -> bytes:
    """`{"data": [...], "next_cursor": ...}` of a page read in one sub-page."""
    cursor = encode_cursor(query, walk.position) if walk.position else None
    return b'{"data":[%s],"next_cursor":%s}' % (b",".join(events), msgspec.json.encode(cursor))


async def search_body(
    query: Query, walk: PageWalk, first: list[bytes]
) -> AsyncGenerator[bytes, None]:
    """`{"data": [...], "next_cursor": ...}` of a search page, sub-page by
    sub-page, `first` being the walk's first sub-page. A later read that
    fails ends the page early, its cursor resuming after the last event sent."""
    events, separator = first, b'{"data":['
    while True:
        for group in groups(events):
            yield separator + b",".join(group)
            separator = b","
        if walk.done:
            break
        try:
            events = await walk.next()
        except AuditlakeError as exc:
            log.info("a search page ends early, its cursor resumes it: %s", exc.message)
            walk.stop_early()
            break
    cursor = encode_cursor(query, walk.position) if walk.position else None
    opening = b'{"data":[' if separator != b"," else b""
    yield opening + b'],"next_cursor":' + msgspec.json.encode(cursor) + b"}"


class PagedResponse(Response):
    """A 200 sending the pieces of `body` as they come, in slices that each
    wait for flow control; it stops when the client hangs up. If `body`
    raises an `AuditlakeError` the answer ends without its final chunk (the
    server closes the connection: an incomplete transfer for the client),
    with one warning logged and the error's status noted for the metrics.

    `on_close` runs exactly once when the response ends, however it ends
    (sent, client gone, failure), and so does closing `body`.
    """

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        on_close: Callable[[], None],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._body = body
        self._on_close = on_close
        self._finished = False
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_disconnect, scope, receive, group.cancel_scope)
                await self._send_all(scope, send)
                group.cancel_scope.cancel()
        finally:
            try:
                await self._body.aclose()
            finally:
                self._on_close()
                release_freed_memory()

    async def _send_all(self, scope: Scope, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        await send(start)
        if scope["method"] != "HEAD":
            try:
                async for piece in self._body:  # pieces made by `groups`
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            except AuditlakeError as exc:
                scope[FAILED_STATUS] = exc.status
                log.warning(
                    "%s stopped after its 200 (%s, %s): the client gets an incomplete answer",
                    scope.get("path"), exc.code, exc.message,
                )  # fmt: skip
                return  # no final chunk: the server closes the connection
        self._finished = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch_disconnect(self, scope: Scope, receive: Receive, stop: CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self._finished:  # the server answers a completed response as a disconnect
            return
        scope[CLIENT_GONE] = True
        log.debug("the client of %s left before the whole answer was sent", scope.get("path"))
        stop.cancel()

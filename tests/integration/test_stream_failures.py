"""A store read that fails after a streamed answer's 200 was sent.

A search page ends early as valid JSON whose cursor resumes right after the
last event sent; an export ends without its final chunk (the client sees an
incomplete transfer), /metrics counts the error's status, and nothing logs
a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.conftest import LiveServer
from tests.integration.test_hostile_clients import request_counts
from tests.store_doubles import StoreWrapper

from auditlake.app import build_services
from auditlake.config import Settings
from auditlake.core.query import Query, too_costly
from auditlake.errors import AuditlakeError, Overloaded, Unavailable
from auditlake.runtime import Services
from auditlake.store.base import EventStore, Page

EVENTS = 230
FAILURES: dict[str, Callable[[], AuditlakeError]] = {
    "too_costly": lambda: too_costly(1.0),
    "unavailable": lambda: Unavailable("the store is closing"),
    "overloaded": lambda: Overloaded("busy", {"retry_after": 1}),
}


class FailingStore(StoreWrapper):
    """Every second search raises `failure` (so each answer's second sub-page
    fails, and a resumed search's first read works)."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.failure: Callable[[], AuditlakeError] | None = None
        self.searches = 0
        self._lock = threading.Lock()

    def search(self, query: Query) -> Page:
        with self._lock:
            self.searches += 1
            fail = self.failure is not None and self.searches % 2 == 0
        if fail:
            assert self.failure is not None
            raise self.failure()
        return self.inner.search(query)


@pytest.fixture
def services(settings: Settings) -> Services:
    built = build_services(settings)
    built.store = FailingStore(built.store)
    return built


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """Every record of auditlake and of uvicorn (which does not propagate)."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("auditlake", "uvicorn", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as http:
        events = [{"id": f"e{n:04d}", "action": "a.b"} for n in range(EVENTS)]
        http.post("/v1/events/batch", json={"events": events}).raise_for_status()
        yield http


def _store(services: Services) -> FailingStore:
    store = services.store
    assert isinstance(store, FailingStore)
    return store


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_a_search_page_ends_early_with_a_cursor_that_resumes(
    kind: str, client: httpx.Client, services: Services, logged: list[logging.LogRecord]
) -> None:
    _store(services).failure = FAILURES[kind]
    seen: list[str] = []
    pages = 0
    params = {"limit": "120", "order": "asc"}
    while True:
        answer = client.get("/v1/events", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()  # whole, valid JSON
        seen += [event["id"] for event in page["data"]]
        pages += 1
        assert pages < 50, "the cursor does not advance"
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"e{n:04d}" for n in range(EVENTS)]  # each event once, in order
    assert pages > 3  # pages were cut short (50 events each, not 120)
    assert all(r.exc_info is None for r in logged), [r.getMessage() for r in logged]
    assert not [r for r in logged if r.levelno >= logging.WARNING]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_an_export_that_fails_midway_is_an_incomplete_transfer(
    kind: str,
    fmt: str,
    client: httpx.Client,
    services: Services,
    logged: list[logging.LogRecord],
) -> None:
    store = _store(services)
    store.failure = FAILURES[kind]
    store.searches = 0
    with pytest.raises(httpx.TransportError):  # RemoteProtocolError: incomplete chunked read
        client.get("/v1/export", params={"format": fmt}).read()
    status = str(FAILURES[kind]().status)
    metrics = client.get("/metrics").text
    assert request_counts(metrics, status).get("export_events") == 1, metrics
    assert "export_events" not in request_counts(metrics, "200")
    assert all(r.exc_info is None for r in logged), [r.getMessage() for r in logged]
    warnings = [r.getMessage() for r in logged if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and FAILURES[kind]().message in warnings[0], warnings
    store.failure = None  # and an export that does not fail is whole
    lines = client.get("/v1/export", params={"format": fmt}).text.splitlines()
    assert len(lines) == EVENTS + (fmt == "csv")

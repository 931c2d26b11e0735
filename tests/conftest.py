"""Shared fixtures and the tier guard.

Tests under tests/unit may not open sockets or SQLite files (the snuba rule):
a test that needs them lives in tests/integration or tests/acceptance and is
marked accordingly (the marker is added from the folder); a test of a service
also carries its resource marker (`s3`; `postgres` and `nats` when they come).
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import pytest
from tests.issuer import LocalIssuer

from auditlake.app import build_services, listen
from auditlake.config import Settings
from auditlake.runtime import Services
from auditlake.web.app import create_app

pytest_plugins = ["pytester"]  # the tier guard's own test runs a scratch session

TIERS = ("unit", "integration", "acceptance")


# A resource marker per service fixture: `pytest -m s3` runs what needs S3.
RESOURCE_FIXTURES = {"s3_endpoint": "s3"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("integration", "acceptance"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        for fixture, resource in RESOURCE_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, resource))


class BlockedIo:
    """Network and database access refused, and every attempt remembered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tried: list[str] = []
        for owner, name, what in (
            (socket.socket, "connect", "socket.connect"),
            (sqlite3, "connect", "sqlite3.connect"),
            (apsw, "Connection", "apsw.Connection"),
        ):
            monkeypatch.setattr(owner, name, self._refusing(what))

    def _refusing(self, what: str) -> Any:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            self.tried.append(what)
            raise RuntimeError("unit tests may not touch the network or a database: mark it")

        return refuse

    def verdict(self) -> str | None:
        """Why the test fails (it tried), or None."""
        if not self.tried:
            return None
        return f"a unit test tried {', '.join(sorted(set(self.tried)))}: mark it integration"


@pytest.fixture(autouse=True)
def _block_io_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    marks = {m.name for m in request.node.iter_markers()}
    if marks & {"integration", "acceptance"}:
        yield
        return
    blocked = BlockedIo(monkeypatch)
    yield
    # Product code may catch the RuntimeError (a retry loop, a readiness
    # probe): the attempt still fails the test.
    if (verdict := blocked.verdict()) is not None:
        pytest.fail(verdict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings on a fresh data folder."""
    return Settings(data_dir=str(tmp_path / "data"), port=0, key_cache_seconds=0.0)


@pytest.fixture
def services(settings: Settings) -> Services:
    """Backends for `settings`, not started (the app's lifespan starts them)."""
    return build_services(settings)


@dataclass
class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    url: str
    services: Services

    def key(self, tenant: str = "acme", *scopes: str) -> str:
        """Create an API key and return the secret."""
        chosen = list(scopes) or ["ingest", "read"]
        return self.services.keys.create(tenant, chosen, "test")[1]  # type: ignore[arg-type]


@pytest.fixture
def live_server(services: Services) -> Iterator[LiveServer]:
    import uvicorn

    config = uvicorn.Config(
        create_app(services), log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # Listening before the server starts, on a port the system picks: no race
    # for a free port.
    listener = listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    """A local OIDC issuer (discovery, JWKS, tokens) on 127.0.0.1."""
    local = LocalIssuer()
    try:
        yield local
    finally:
        local.close()

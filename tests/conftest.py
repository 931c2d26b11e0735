"""Shared fixtures and the tier guard.

Tests under tests/unit may not open sockets or SQLite files (the snuba rule):
a test that needs them lives in tests/integration or tests/acceptance and is
marked accordingly (the marker is added from the folder); a test of a service
also carries its resource marker (`s3`, `postgres`; `nats` when it comes).

PostgreSQL tests take `pg_dsn`: a database of their own on the server at
127.0.0.1:5432 (trust auth, user `postgres`), made for the test and dropped
after it. Without a server they are skipped, except under `CI`, where that
fails the run.
"""

from __future__ import annotations

import os
import secrets
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
RESOURCE_FIXTURES = {"s3_endpoint": "s3", "pg_dsn": "postgres"}
PG_SERVER = "host=127.0.0.1 port=5432 user=postgres"
# This run's databases: a prefix no other run shares, so cleaning up after a
# crashed run never touches another's.
PG_RUN = f"auditlake_test_{os.getpid()}_{secrets.token_hex(3)}"


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
        blocked: list[tuple[Any, str, str]] = [
            (socket.socket, "connect", "socket.connect"),
            (sqlite3, "connect", "sqlite3.connect"),
            (apsw, "Connection", "apsw.Connection"),
        ]
        try:  # libpq opens its own sockets: refuse at psycopg's door
            import psycopg

            blocked += [(psycopg, "connect", "psycopg.connect")]
            blocked += [(psycopg.Connection, "connect", "psycopg.Connection.connect")]
        except ImportError:
            pass
        for owner, name, what in blocked:
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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The PostgreSQL server's DSN (its `postgres` database); at the end of
    the run, any database of this run still there is dropped."""
    import psycopg

    try:
        psycopg.connect(f"{PG_SERVER} dbname=postgres", connect_timeout=5).close()
    except psycopg.Error as exc:
        message = f"no PostgreSQL server on 127.0.0.1:5432: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield f"{PG_SERVER} dbname=postgres"
    with psycopg.connect(f"{PG_SERVER} dbname=postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"{PG_RUN}%",)).fetchall()  # fmt: skip
        for (name,) in rows:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh database of this test's own; dropped after it."""
    import psycopg

    name = f"{PG_RUN}_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield f"{PG_SERVER} dbname={name}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


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

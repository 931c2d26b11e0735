"""A full disk: errors name the cause, readiness follows the writes, and
shutdown is bounded.

SQLite's `PRAGMA max_page_count` makes a database full (SQLITE_FULL,
"database or disk is full") exactly as a full disk does, without root or a
small file system. The journal's connection is reached through APSW's
connection hooks; the recorder's store is made to fail by a trigger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import httpx
import pytest
from starlette.testclient import TestClient
from tests.conftest import LiveServer

from auditlake.app import build_services
from auditlake.config import Settings
from auditlake.sqlite_db import open_database
from auditlake.web.app import create_app

FULL = "database or disk is full"


@pytest.fixture
def journal_connections() -> Iterator[list[apsw.Connection]]:
    """Every connection this process opens on a journal.db from now on."""
    opened: list[apsw.Connection] = []

    def note(conn: apsw.Connection) -> None:
        if conn.filename.endswith("journal.db"):
            opened.append(conn)

    apsw.connection_hooks.append(note)
    try:
        yield opened
    finally:
        apsw.connection_hooks.remove(note)


def test_full_journal_is_a_503_naming_the_cause_and_readiness_follows(
    journal_connections: list[apsw.Connection], live_server: LiveServer
) -> None:
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    url = live_server.url
    assert (
        httpx.post(f"{url}/v1/events", json={"action": "a.b"}, headers=headers).status_code == 201
    )
    writer = journal_connections[0]  # the group-commit writer opens the journal first
    pages = writer.execute("PRAGMA page_count").fetchall()[0][0]
    writer.execute(f"PRAGMA max_page_count = {pages}")
    big = {"action": "a.b", "metadata": {"blob": "x" * 30_000}}  # needs new pages
    for _ in range(3):
        answer = httpx.post(f"{url}/v1/events", json=big, headers=headers)
        assert answer.status_code == 503, answer.text
        assert FULL in answer.json()["error"]["message"]
        assert "no transaction is active" not in answer.text
        assert answer.headers["retry-after"] == "1"
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503
    assert any(FULL in problem for problem in ready.json()["problems"]), ready.text
    writer.execute("PRAGMA max_page_count = 1073741823")  # room again; nobody writes
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readiness did not recover once writes work"
        time.sleep(0.1)
    assert httpx.post(f"{url}/v1/events", json=big, headers=headers).status_code == 201


def test_shutdown_is_bounded_while_indexing_fails(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    store = open_database(settings.store_path, "store")
    store.execute(
        f"CREATE TRIGGER full BEFORE INSERT ON event_index BEGIN SELECT RAISE(FAIL, '{FULL}'); END"
    )
    store.close()
    services = build_services(settings)
    secret = services.keys.create("acme", ["ingest"], "t")[1]
    with TestClient(create_app(services)) as client:
        answer = client.post(
            "/v1/events", json={"action": "a.b"}, headers={"authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 201
        time.sleep(1.5)  # the recorder fails and retries
        assert services.index_lag() > 0
        started = time.monotonic()
    assert time.monotonic() - started < 10

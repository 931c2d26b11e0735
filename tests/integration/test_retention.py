"""Retention of the hot store and one history across the store and the lake:
nothing leaves the store before the lake has it, and a search over a range
past the retention reads the lake, page by page, in both orders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from auditlake.app import ARCHIVER, build_services
from auditlake.config import LakeSettings, RetentionSettings, Settings
from auditlake.consumers.state import ConsumerState
from auditlake.sqlite_db import connect, scalar
from auditlake.store.sqlite_retention import SqliteRetention
from auditlake.web.app import create_app

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=45)  # beyond the 30 days of retention
RECENT = NOW - timedelta(days=2)


def settings_for(tmp_path: Path) -> Settings:
    # The archiver flushes only when the server stops: until then it is "stopped".
    return Settings(
        data_dir=str(tmp_path),
        lake=LakeSettings(batch_events=1_000_000, batch_seconds=3600),
        retention=RetentionSettings(days=30, tenants={"keep": 0}),
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    settings = settings_for(tmp_path)
    services = build_services(settings)
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    headers = {"authorization": f"Bearer {secret}"}

    def start() -> TestClient:
        return TestClient(create_app(build_services(settings)))

    yield settings, headers, start


def events(prefix: str, start: datetime, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{n:03d}",
            "action": "user.signed_in" if n % 3 else "user.deleted",
            "occurred_at": (start + timedelta(minutes=7 * n)).isoformat(),
            "actor": {"id": f"u{n % 4}", "type": "user"},
        }
        for n in range(count)
    ]


def every_page(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/events", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= int(params["limit"])
        found += [e["id"] for e in body["data"]]
        cursor = body.get("next_cursor")
        if not cursor:
            return found
    raise AssertionError("too many pages")


def retention(settings: Settings) -> SqliteRetention:
    state = ConsumerState(settings.consumers_path)
    return SqliteRetention(
        settings.store_path, settings.journal_path, settings.retention,
        archived=lambda: state.cursor(ARCHIVER),
    )  # fmt: skip


def stored(settings: Settings) -> int:
    conn = connect(settings.journal_path)
    try:
        return int(scalar(conn, "SELECT count(*) FROM events"))
    finally:
        conn.close()


def test_old_events_leave_the_store_only_once_archived_and_stay_searchable(server: Any) -> None:
    settings, headers, start = server
    old, recent = events("o", OLD, 60), events("r", RECENT, 25)
    with start() as client:
        for batch in (old[:30], old[30:], recent):
            response = client.post("/v1/events/batch", json={"events": batch}, headers=headers)
            assert response.status_code == 201, response.text
        assert retention(settings).run_once() == {}  # nothing is in the lake yet
        assert stored(settings) == 85
    # Stopping flushes the archiver; then retention may remove the old events.
    with start() as client:
        assert retention(settings).run_once() == {"acme": 60}
        assert stored(settings) == 25
        newest_first = [e["id"] for e in sorted(old + recent, key=lambda e: e["occurred_at"])]
        newest_first.reverse()
        assert every_page(client, headers, limit=7) == newest_first
        assert every_page(client, headers, limit=7, order="asc") == newest_first[::-1]
        in_old_range = {"since": OLD.isoformat(), "until": (OLD + timedelta(days=1)).isoformat()}
        deleted = [e for e in newest_first if e.startswith("o")]
        assert every_page(client, headers, limit=9, **in_old_range) == deleted
        wanted = [i for i in newest_first if int(i[1:]) % 3 == 0]
        assert every_page(client, headers, limit=4, action="user.deleted") == wanted
        assert every_page(client, headers, limit=50, actor_id="u1", order="asc") == [
            i for i in newest_first[::-1] if int(i[1:]) % 4 == 1
        ]
        # A second pass finds nothing more to remove.
        assert retention(settings).run_once() == {}

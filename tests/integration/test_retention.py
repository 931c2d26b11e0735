"""Retention of the hot store and one history across the store and the lake:
nothing leaves the store before the lake has it, and a search over a range
past the retention reads the lake, page by page, in both orders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from auditlake.app import ARCHIVER, build_consumers, build_services
from auditlake.cli import app as cli
from auditlake.config import Settings, load_settings
from auditlake.consumers.state import ConsumerState
from auditlake.sqlite_db import connect, scalar
from auditlake.store.sqlite_retention import SqliteRetention
from auditlake.web.app import create_app

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=45)  # beyond the 30 days of retention
RECENT = NOW - timedelta(days=2)


# The archiver flushes only when the server stops: until then it is "stopped".
CONFIG = """
[lake]
batch_events = 1000000
batch_seconds = 3600

[retention]
days = 30
tenants = { keep = 0 }
"""


def settings_for(tmp_path: Path) -> Settings:
    (tmp_path / "auditlake.toml").write_text(f'data_dir = "{tmp_path}"\n{CONFIG}')
    return load_settings(tmp_path / "auditlake.toml")


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


def retention(settings: Settings, now: datetime | None = None) -> SqliteRetention:
    [archiver] = build_consumers(settings).runners
    moment = now or datetime.now(UTC)
    return SqliteRetention(
        settings.store_path, settings.journal_path, settings.retention,
        archived=archiver.output_through,
        now_us=lambda: int(moment.timestamp() * 1e6),
    )  # fmt: skip


def stored(settings: Settings) -> int:
    return len(store_contents(settings)[0])


def store_contents(settings: Settings) -> tuple[list[Any], int]:
    """The journal's events (tenant, id, body) and the count of index rows."""
    conn = connect(settings.journal_path)
    try:
        conn.execute("ATTACH DATABASE ? AS store", (str(settings.store_path),))
        rows = conn.execute("SELECT tenant, id, body FROM events ORDER BY tenant, id").fetchall()
        return rows, int(scalar(conn, "SELECT count(*) FROM store.event_index"))
    finally:
        conn.close()


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_nothing_from_the_archivers_first_dead_letter_on_leaves_the_store(server: Any) -> None:
    settings, headers, start = server
    with start() as client:  # stopping flushes the archiver: all 10 are archived
        response = client.post("/v1/events/batch", json={"events": events("o", OLD, 10)},
                               headers=headers)  # fmt: skip
        assert response.status_code == 201, response.text
    conn = connect(settings.journal_path)
    seq = int(scalar(conn, "SELECT seq FROM events WHERE id = 'o004'"))
    conn.close()
    state = ConsumerState(settings.consumers_path)
    state.dead_letters.add(ARCHIVER, str(seq), "the archiver could not write it", b"{}", seq)
    state.close()
    assert retention(settings).run_once() == {"acme": 4}  # o000 - o003 only
    assert [row[1] for row in store_contents(settings)[0]] == [f"o{n:03d}" for n in range(4, 10)]


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
    # `auditlake query --lake` reads only the lake: every event was archived.
    config = str(settings.data_dir) + "/auditlake.toml"
    output = run_cli("query", "--lake", "--tenant", "acme", "--config", config,
                     "--action", "user.deleted", "--json", "--limit", "500")  # fmt: skip
    lines = [json.loads(line)["id"] for line in output.splitlines()]
    assert lines == [i for i in newest_first if int(i[1:]) % 3 == 0]


def test_rehydrating_a_window_twice_gives_the_store_of_once(server: Any) -> None:
    settings, headers, start = server
    old = events("o", OLD, 30)
    # The newest journal row always stays (the next seq counts from it): a recent one.
    with start() as client:
        for batch in (old, events("r", RECENT, 1)):
            response = client.post("/v1/events/batch", json={"events": batch}, headers=headers)
            assert response.status_code == 201, response.text
    with start() as client:
        assert retention(settings).run_once() == {"acme": 30}
    config = str(settings.data_dir) + "/auditlake.toml"
    window = ["--since", OLD.isoformat(), "--until", (OLD + timedelta(hours=2)).isoformat()]
    output = run_cli("rehydrate", "--config", config, *window, "--tenant", "acme")
    assert "18 events read from the lake: 18 rehydrated, 0 already in the store" in output
    with start() as client:  # the recorder indexes them at start; a search waits for it
        assert client.get("/v1/events", headers=headers).status_code == 200
        once = store_contents(settings)
        assert len(once[0]) == 19
        output = run_cli("rehydrate", "--config", config, *window)  # every tenant
        assert "18 rehydrated" not in output and "18 already in the store" in output
        twice = store_contents(settings)
        assert twice == once and once[1] == 19
        # Rehydrated events stay for rehydrated_days, then retention removes them
        # (once the archiver has passed their new journal rows: at the stop here).
        assert retention(settings).run_once() == {}
    later = NOW + timedelta(days=settings.retention.rehydrated_days, hours=1)
    assert retention(settings).run_once() == {}
    # All but the newest journal row, which is the last one rehydrated.
    assert retention(settings, now=later).run_once() == {"acme": 17}
    with start() as client:
        ids = [e["id"] for e in client.get("/v1/events", params={"limit": 50},
                                              headers=headers).json()["data"]]  # fmt: skip
        assert ids == ["r000", *[e["id"] for e in old][::-1]]  # the lake answers for the rest

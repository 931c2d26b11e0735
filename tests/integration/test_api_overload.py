"""A full write queue answers 503 with Retry-After; nothing acknowledged is
lost and nothing refused is stored."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer

from auditlake.config import Settings
from auditlake.sqlite_db import connect


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), port=0, queue_capacity=10)


def test_overload_is_503_with_retry_after(live_server: LiveServer, settings: Settings) -> None:
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    blocker = connect(settings.journal_path)
    blocker.execute("BEGIN IMMEDIATE")  # the group-commit writer now waits
    answers: dict[str, httpx.Response] = {}

    def send(n: int) -> None:
        event = {"id": f"o{n}", "action": "load.test"}
        answers[f"o{n}"] = httpx.post(
            f"{live_server.url}/v1/events", json=event, headers=headers, timeout=30
        )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while sum(r.status_code == 503 for r in list(answers.values())) < 30:
        assert time.monotonic() < deadline, "the full queue did not refuse requests"
        time.sleep(0.05)
    blocker.execute("ROLLBACK")
    blocker.close()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == 40
    accepted = {i for i, r in answers.items() if r.status_code == 201}
    refused = [i for i, r in answers.items() if r.status_code == 503]
    assert len(accepted) == 10 and len(refused) == 30
    sample = answers[refused[0]]
    assert sample.headers["retry-after"] == "1"
    assert sample.json()["error"]["code"] == "overloaded"
    stored = httpx.get(f"{live_server.url}/v1/events", params={"limit": 100}, headers=headers)
    assert {e["id"] for e in stored.json()["data"]} == accepted

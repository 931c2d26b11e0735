"""Re-sending events stores nothing new and reports the duplicates, against the
real `auditlake serve` process, also across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import Server, create_key, stored_row_count


def event(event_id: str | None, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"action": "doc.viewed", "actor": {"id": f"u{n % 7}"}}
    if event_id is not None:
        body["id"] = event_id
    return body


def batch_answer(ids: list[str], status: str) -> dict[str, Any]:
    created = len(ids) if status == "created" else 0
    return {
        "results": [{"id": event_id, "status": status} for event_id in ids],
        "created": created,
        "duplicates": len(ids) - created,
    }


def post_batch(
    client: httpx.Client, events: list[dict[str, Any]], idempotency_key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return client.post("/v1/events/batch", json={"events": events}, headers=headers)


def search_ids(client: httpx.Client) -> list[str]:
    """Every event id of the key's tenant, through the paged search API."""
    ids: list[str] = []
    params = {"limit": "1000", "order": "asc"}
    while True:
        response = client.get("/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["data"]]
        if not page["next_cursor"]:
            return ids
        params["cursor"] = page["next_cursor"]


def open_client(server: Server, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def check_stored(client: httpx.Client, db: Path, expected: set[str]) -> None:
    ids = search_ids(client)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert stored_row_count(db) == len(expected)


@pytest.mark.timeout(120)
def test_resent_batch_is_reported_as_duplicates(server: Server, data_dir: Path) -> None:
    key = create_key(data_dir, "acme")
    db = data_dir / "journal.db"
    ids = [f"dup-{n}" for n in range(150)]
    first = [event(event_id, n) for n, event_id in enumerate(ids)]
    server.start()
    with open_client(server, key) as client:
        answer = post_batch(client, first)
        assert (answer.status_code, answer.json()) == (201, batch_answer(ids, "created"))
        check_stored(client, db, set(ids))

        again = post_batch(client, first)
        assert (again.status_code, again.json()) == (200, batch_answer(ids, "duplicate"))
        check_stored(client, db, set(ids))

        # Each id with its own content (as first sent): a re-sent id must be identical.
        overlap = [f"dup-{n}" for n in range(100, 200)]
        mixed = post_batch(client, [event(f"dup-{n}", n) for n in range(100, 200)])
        assert mixed.status_code == 201
        statuses = {r["id"]: r["status"] for r in mixed.json()["results"]}
        assert [r["id"] for r in mixed.json()["results"]] == overlap
        assert statuses == {i: "duplicate" if i in set(ids) else "created" for i in overlap}
        assert (mixed.json()["created"], mixed.json()["duplicates"]) == (50, 50)
        all_ids = set(ids) | set(overlap)
        check_stored(client, db, all_ids)

        single = client.post("/v1/events", json=first[0])
        assert (single.status_code, single.json()) == (200, {"id": "dup-0", "status": "duplicate"})
        check_stored(client, db, all_ids)

        # Another event under a stored id: 409 naming it, and nothing of the batch stored.
        changed = [event("new-1", 1), {**first[5], "action": "doc.deleted"}]
        refused = post_batch(client, changed)
        assert refused.status_code == 409, refused.text
        details = refused.json()["error"]["details"]
        assert [(d["id"], d["index"]) for d in details] == [("dup-5", 1)]
        check_stored(client, db, all_ids)


@pytest.mark.timeout(120)
def test_idempotency_key_batch_resent_gets_same_ids(server: Server, data_dir: Path) -> None:
    key = create_key(data_dir, "acme")
    db = data_dir / "journal.db"
    anonymous = [event(None, n) for n in range(40)]
    server.start()
    with open_client(server, key) as client:
        first = post_batch(client, anonymous, "import-2024-06-01")
        assert first.status_code == 201, first.text
        ids = [r["id"] for r in first.json()["results"]]
        assert len(set(ids)) == 40
        assert first.json() == batch_answer(ids, "created")

        again = post_batch(client, anonymous, "import-2024-06-01")
        assert (again.status_code, again.json()) == (200, batch_answer(ids, "duplicate"))
        check_stored(client, db, set(ids))

    server.stop()
    server.start()  # the ids are derived from the key: a restart changes nothing
    with open_client(server, key) as client:
        late = post_batch(client, anonymous, "import-2024-06-01")
        assert (late.status_code, late.json()) == (200, batch_answer(ids, "duplicate"))
        check_stored(client, db, set(ids))
        # The fingerprints are durable too: the same key with another body is a 409.
        shifted = post_batch(client, [event(None, n + 1) for n in range(40)], "import-2024-06-01")
        assert shifted.status_code == 409, shifted.text
        check_stored(client, db, set(ids))
        other = post_batch(client, anonymous, "import-2024-06-02")
        assert other.status_code == 201
        new_ids = [r["id"] for r in other.json()["results"]]
        assert not set(new_ids) & set(ids)
        check_stored(client, db, set(ids) | set(new_ids))

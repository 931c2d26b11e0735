"""The fingerprints behind duplicate-or-conflict in the SQLite journal: durable
across a restart, given on demand to rows of a database written before them,
judged per request inside one group commit; and pulled vendor events that
come again with other content (the first copy kept, counted in /metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.fake_cloudflare import FakeCloudflare, v1_item

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.core.event import EventInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.errors import Conflict
from auditlake.journal.base import AppendResult
from auditlake.journal.sqlite import SqliteJournal
from auditlake.runtime import Services
from auditlake.sqlite_db import DbConnection, connect, migrations

RECEIVED = datetime(2026, 11, 1, tzinfo=UTC)


def stored(*events: dict[str, Any], received: datetime = RECEIVED) -> list[StoredEvent]:
    origin = Origin("acme", "key:t", "api", received)
    return normalize([msgspec.convert(e, EventInput) for e in events], origin, Limits())


def submit(journal: SqliteJournal, *events: dict[str, Any]) -> list[AppendResult]:
    return journal.submit(stored(*events)).result(timeout=10)


def fingerprints(path: Path) -> dict[str, bytes | None]:
    conn = connect(path)
    try:
        return dict(conn.execute("SELECT id, fingerprint FROM events").fetchall())
    finally:
        conn.close()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


def test_fingerprints_are_computed_on_a_hit_cached_and_durable(journal_path: Path) -> None:
    journal = SqliteJournal(journal_path)
    journal.start()
    submit(journal, {"id": "evt-7", "action": "user.signed_in"}, {"action": "generated.id"})
    # Writing a new event computes no fingerprint: the check costs new events nothing.
    assert set(fingerprints(journal_path).values()) == {None}
    later = stored({"id": "evt-7", "action": "user.signed_in"}, received=RECEIVED + timedelta(1))
    assert journal.submit(later).result(timeout=10) == [AppendResult("evt-7", "duplicate")]
    journal.close()
    prints = fingerprints(journal_path)
    assert len(prints.pop("evt-7") or b"") == 16  # cached by the hit
    assert list(prints.values()) == [None]  # the generated id never came again
    again = SqliteJournal(journal_path)
    again.start()
    try:
        assert submit(again, {"id": "evt-7", "action": "user.signed_in"})[0].status == "duplicate"
        with pytest.raises(Conflict):
            submit(again, {"id": "evt-7", "action": "org.deleted"})
    finally:
        again.close()
    assert len(fingerprints(journal_path)) == 2


def journal_at_version_2(path: Path, events: list[StoredEvent]) -> None:
    """A journal as the release before fingerprints wrote it."""
    conn = connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for version, name, script in migrations("journal")[:2]:  # events, kept_until
        conn.execute(script).fetchall()
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (version, name))
    conn.executemany(
        "INSERT INTO events (seq, tenant, id, occurred_us, received_us, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (seq, s.event.tenant, s.event.id, s.occurred_us, s.received_us, s.body)
            for seq, s in enumerate(events, start=1)
        ],
    )
    conn.close()


def test_a_journal_written_before_fingerprints_upgrades_and_judges_old_rows(
    journal_path: Path,
) -> None:
    old = stored(
        {"id": "old-1", "action": "user.signed_in", "metadata": {"a": 1, "b": 2}},
        {"id": "old-2", "action": "x", "occurred_at": "2026-10-01T00:00:00Z"},
    )
    journal_at_version_2(journal_path, old)
    journal = SqliteJournal(journal_path)
    journal.start()
    try:
        conn: DbConnection = connect(journal_path)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [1, 2, 3, 4]
        conn.close()
        resent = journal.submit(
            stored(
                {"id": "old-1", "action": "user.signed_in", "metadata": {"b": 2, "a": 1}},
                {"id": "old-2", "action": "x", "occurred_at": "2026-10-01T02:00:00+02:00"},
                received=RECEIVED + timedelta(hours=1),
            )
        ).result(timeout=10)
        assert [r.status for r in resent] == ["duplicate", "duplicate"]
        with pytest.raises(Conflict) as refused:
            submit(journal, {"id": "new", "action": "x"}, {"id": "old-2", "action": "y"})
        assert [(d["id"], d["index"]) for d in refused.value.details] == [("old-2", 1)]
    finally:
        journal.close()
    cached = fingerprints(journal_path)  # computed from the old bodies on the hits, and kept
    assert sorted(cached) == ["old-1", "old-2"]
    assert all(len(p or b"") == 16 for p in cached.values())


def test_one_group_commit_judges_each_request_on_its_own(journal_path: Path) -> None:
    journal = SqliteJournal(journal_path)
    journal.start()
    blocker = connect(journal_path)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits: the requests share one commit
    try:
        refused = stored(
            {"id": "z", "action": "from-a-refused-request"}, {"id": "x", "action": "2"}
        )
        futures: list[Future[list[AppendResult]]] = [
            journal.submit(stored({"id": "x", "action": "first"})),
            journal.submit(refused),
            journal.submit(stored({"id": "z", "action": "z"}, {"id": "x", "action": "first"})),
        ]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    try:
        assert futures[0].result(timeout=10) == [AppendResult("x", "created")]
        with pytest.raises(Conflict):
            futures[1].result(timeout=10)
        # The refused request's "z" was never written, so this "z" is new.
        assert [r.status for r in futures[2].result(timeout=10)] == ["created", "duplicate"]
    finally:
        journal.close()
    conn = connect(journal_path)
    rows = conn.execute("SELECT id, body FROM events ORDER BY seq").fetchall()
    conn.close()
    assert [(i, msgspec.json.decode(b)["action"]) for i, b in rows] == [("x", "first"), ("z", "z")]


# --------------------------------------------------------------------------- pollers

TOKEN = "cf-conflict-token"
ACCOUNT = "0a1b2c3d4e5f"


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(token=TOKEN) as api:
        yield api


@pytest.fixture
def polled(tmp_path: Path, fake: FakeCloudflare) -> Iterator[Services]:
    block = {
        "name": "cf", "account_id": ACCOUNT, "api": "v1", "base_url": fake.base_url,
        "token_env": "CF_TOKEN", "safety_lag": 120.0, "page_size": 50,
        "initial_checkpoint": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    settings = load_settings(
        env={"CF_TOKEN": TOKEN},
        overrides={"data_dir": str(tmp_path / "data"), "sources": {"cloudflare": [block]}},
    )
    services = build_services(settings)
    assert services.pollers is not None
    pollers, services.pollers = services.pollers, None  # polled by hand
    services.start()
    services.pollers = pollers
    try:
        yield services
    finally:
        services.close()


def test_a_vendor_item_fetched_again_with_other_content_keeps_the_first_copy(
    polled: Services, fake: FakeCloudflare
) -> None:
    assert polled.pollers is not None
    poller = polled.pollers.runners[0].poller
    moment = datetime.now(UTC) - timedelta(seconds=30)  # inside the next poll's safety lag
    items = [v1_item(n, moment + timedelta(milliseconds=n), ACCOUNT) for n in range(3)]
    fake.add(ACCOUNT, items)
    first = poller.poll_once()
    assert (first.created, first.conflicts) == (3, 0)
    items[1]["newValue"] = "medium"  # the vendor now shows item 1 otherwise
    again = poller.poll_once()
    assert (again.fetched, again.created, again.duplicates, again.conflicts) == (3, 0, 2, 1)
    conn = connect(Path(polled.settings.data_dir) / "journal.db")
    raws = [msgspec.json.decode(b)["raw"] for (b,) in conn.execute("SELECT body FROM events")]
    conn.close()
    assert [r["newValue"] for r in raws if r["id"] == items[1]["id"]] == ["low"]  # the first copy
    metrics = polled.metrics.render().decode()
    assert 'auditlake_duplicate_conflicts_total{source="poller:cf"} 1.0' in metrics
    assert 'auditlake_events_total{result="duplicate",source="poller:cf"} 2.0' in metrics

"""One contract suite for every journal + store backend (memory and SQLite),
and a cross-check of SQLite's search against the reference `matches()`."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pytest

from auditlake.app import build_recorder
from auditlake.config import Settings
from auditlake.consumers.runner import ConsumerRunner
from auditlake.consumers.sink import Batch
from auditlake.core.event import EventInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.query import Query, parse_query
from auditlake.dead_letters import MemoryDeadLetters
from auditlake.errors import Conflict, Overloaded, Unavailable
from auditlake.journal.base import AppendResult
from auditlake.journal.memory import MemoryEventLog
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.postgres_db import connect as connect_pg
from auditlake.postgres_db import migrate as migrate_pg
from auditlake.sqlite_db import connect
from auditlake.store import sqlite as sqlite_store
from auditlake.store.base import Page
from auditlake.store.postgres import PostgresStore
from auditlake.store.postgres_recorder import PostgresIndexSink
from auditlake.store.recorder_process import RecorderProcess
from auditlake.store.sqlite import SqliteStore
from auditlake.store.sqlite_recorder import SqliteIndexSink


class Backend(Protocol):
    def append(self, events: list[StoredEvent]) -> list[AppendResult]: ...
    def append_keeping_first(self, events: list[StoredEvent]) -> list[AppendResult]: ...
    def get(self, tenant: str, event_id: str) -> bytes | None: ...
    def search(self, query: Query) -> Page: ...


class SqlitePair:
    """The embedded backends in `folder`: journal, recorder, store."""

    def __init__(self, folder: Path, batch_events: int = 20_000) -> None:
        settings = Settings(data_dir=str(folder), index_batch_events=batch_events)
        self.journal_path, store_path = settings.journal_path, settings.store_path
        self.recorder = RecorderProcess(partial(build_recorder, settings))
        self.journal = SqliteJournal(self.journal_path, on_durable=self.recorder.notify)
        self.journal.start()
        self.recorder.start()
        self.store = SqliteStore(store_path, self.journal_path)

    def append(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.journal.submit(events).result(timeout=10)

    def append_keeping_first(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.journal.submit(events, keep_first=True).result(timeout=10)

    def get(self, tenant: str, event_id: str) -> bytes | None:
        return self.store.get(tenant, event_id)

    def search(self, query: Query) -> Page:
        self.recorder.sync().result(timeout=10)
        return self.store.search(query)

    def close(self) -> None:
        self.journal.close()
        self.recorder.close()
        self.store.close()


class PostgresPair:
    """The embedded journal, the recorder's PostgreSQL sink on a runner in a
    thread (woken by the journal's commits), and the PostgreSQL store."""

    def __init__(self, folder: Path, dsn: str) -> None:
        with connect_pg(dsn) as conn:
            migrate_pg(conn, "store")
        self.runner = ConsumerRunner(
            "recorder", PostgresIndexSink(partial(connect_pg, dsn, autocommit=True)),
            SqliteJournalReader(folder / "journal.db"), MemoryDeadLetters(),
            batch_events=1, batch_seconds=0.0,
        )  # fmt: skip
        self.journal = SqliteJournal(
            folder / "journal.db", on_durable=lambda _head: self.runner.wake()
        )
        self.journal.start()
        self.runner.start()
        self.store = PostgresStore(dsn, pool_size=2)

    def append(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.journal.submit(events).result(timeout=10)

    def append_keeping_first(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.journal.submit(events, keep_first=True).result(timeout=10)

    def get(self, tenant: str, event_id: str) -> bytes | None:
        self._sync()
        return self.store.get(tenant, event_id)

    def search(self, query: Query) -> Page:
        self._sync()
        return self.store.search(query)

    def _sync(self) -> None:
        deadline = time.monotonic() + 10
        while self.runner.committed() < self.journal.head():
            assert time.monotonic() < deadline, "the PostgreSQL recorder did not catch up"
            time.sleep(0.005)

    def close(self) -> None:
        self.journal.close()
        self.runner.close(timeout=10)
        self.store.close()


class MemoryPair(MemoryEventLog):
    def append(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.submit(events).result()

    def append_keeping_first(self, events: list[StoredEvent]) -> list[AppendResult]:
        return self.submit(events, keep_first=True).result()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        log = MemoryPair()
        log.start()
        yield log
        return
    pair: SqlitePair | PostgresPair
    if request.param == "postgres":
        pair = PostgresPair(tmp_path, request.getfixturevalue("pg_dsn"))
    else:
        pair = SqlitePair(tmp_path)
    yield pair
    pair.close()


RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def stored(
    tenant: str, *events: dict[str, Any], received: datetime = RECEIVED, caller: str = "key:t"
) -> list[StoredEvent]:
    origin = Origin(tenant, caller, "api", received)
    inputs = [msgspec.convert(e, EventInput) for e in events]
    return normalize(inputs, origin, Limits())


def test_append_get_and_exactly_once(backend: Backend) -> None:
    first = backend.append(stored("acme", {"id": "a", "action": "x"}, {"id": "b", "action": "x"}))
    assert [r.status for r in first] == ["created", "created"]
    again = backend.append(stored("acme", {"id": "b", "action": "x"}, {"id": "c", "action": "x"}))
    assert [(r.id, r.status) for r in again] == [("b", "duplicate"), ("c", "created")]
    inside = backend.append(stored("acme", {"id": "d", "action": "x"}, {"id": "d", "action": "x"}))
    assert [r.status for r in inside] == ["created", "duplicate"]
    assert backend.append(stored("other", {"id": "a", "action": "x"}))[0].status == "created"
    body = backend.get("acme", "a")
    assert body is not None and msgspec.json.decode(body)["tenant"] == "acme"
    assert backend.get("nobody", "a") is None
    page = backend.search(parse_query("acme", {"limit": "100"}))
    assert sorted(msgspec.json.decode(b)["id"] for b in page.events) == ["a", "b", "c", "d"]


EVT_7: dict[str, Any] = {
    "id": "evt-7", "action": "user.signed_in", "occurred_at": "2024-05-31T23:00:00Z",
    "actor": {"id": "u1", "type": "user", "name": "Ada"},
    "targets": [{"id": "t0", "type": "team"}, {"id": "t1", "type": "repo"}],
    "context": {"ip": "10.0.0.1"}, "metadata": {"plan": "pro", "seats": 3},
}  # fmt: skip


def test_an_identical_resend_is_a_duplicate_whatever_the_service_filled_in(
    backend: Backend,
) -> None:
    no_time = {"id": "evt-8", "action": "user.signed_out"}  # occurred_at: the receipt time
    first = backend.append(stored("acme", EVT_7, no_time))
    assert [(r.id, r.status) for r in first] == [("evt-7", "created"), ("evt-8", "created")]
    original = backend.get("acme", "evt-7")
    # A second later, through another key, in the same content written another
    # way: keys reordered, blanks around text, the default version spelled out,
    # occurred_at in another offset and as openstatus epoch milliseconds.
    same = {
        **EVT_7, "action": " user.signed_in ", "version": 1,
        "metadata": {"seats": 3, "plan": "pro"}, "occurred_at": "2024-06-01T01:00:00+02:00",
    }  # fmt: skip
    as_millis = {**EVT_7, "occurred_at": None, "timestamp": 1_717_196_400_000}
    later = RECEIVED + timedelta(seconds=1)
    again = backend.append(stored("acme", same, as_millis, no_time, received=later, caller="key:u"))
    assert [(r.id, r.status) for r in again] == [("evt-7", "duplicate")] * 2 + [
        ("evt-8", "duplicate")
    ]
    assert backend.get("acme", "evt-7") == original  # the first copy, untouched


CHANGES: dict[str, dict[str, Any]] = {
    "action": {"action": "org.deleted"},
    "occurred_at": {"occurred_at": "2024-05-31T23:00:00.000001Z"},
    "occurred_at left out": {"occurred_at": None},
    "actor id": {"actor": {"id": "u2", "type": "user", "name": "Ada"}},
    "actor name": {"actor": {"id": "u1", "type": "user", "name": "Eve"}},
    "targets": {"targets": [{"id": "t0", "type": "team"}]},
    "target order": {"targets": [{"id": "t1", "type": "repo"}, {"id": "t0", "type": "team"}]},
    "context": {"context": {"ip": "10.0.0.2"}},
    "metadata value": {"metadata": {"plan": "free", "seats": 3}},
    "metadata key added": {"metadata": {"plan": "pro", "seats": 3, "sso": True}},
    "outcome": {"outcome": "failure"},
    "error": {"error": {"code": "E1"}},
    "version": {"version": 2},
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=list(CHANGES))
def test_another_event_under_a_stored_id_is_a_conflict_and_nothing_is_stored(
    backend: Backend, change: dict[str, Any]
) -> None:
    backend.append(stored("acme", EVT_7))
    original = backend.get("acme", "evt-7")
    batch = stored("acme", {"id": "new-1", "action": "x"}, {**EVT_7, **change})
    with pytest.raises(Conflict) as refused:
        backend.append(batch)
    assert refused.value.status == 409
    assert refused.value.details == [
        {"id": "evt-7", "index": 1, "message": "a different event is already stored under this id"}
    ]
    assert backend.get("acme", "new-1") is None  # all or nothing
    assert backend.get("acme", "evt-7") == original
    assert backend.append(stored("acme", EVT_7))[0].status == "duplicate"


def test_two_different_events_with_one_id_in_a_request_are_a_conflict(backend: Backend) -> None:
    batch = stored(
        "acme", {"id": "w", "action": "a"}, {"id": "ok", "action": "a"},
        {"id": "w", "action": "a"}, {"id": "w", "action": "b"},
    )  # fmt: skip
    with pytest.raises(Conflict) as refused:
        backend.append(batch)
    assert [(p["id"], p["index"]) for p in refused.value.details] == [("w", 3)]
    assert "index 0" in refused.value.details[0]["message"]
    assert backend.get("acme", "w") is None and backend.get("acme", "ok") is None
    same_twice = stored("acme", {"id": "w", "action": "a"}, {"id": "w", "action": "a"})
    assert [r.status for r in backend.append(same_twice)] == ["created", "duplicate"]


def test_a_generated_id_sent_again_is_judged_by_the_stored_body(backend: Backend) -> None:
    (created,) = backend.append(stored("acme", {"action": "x", "metadata": {"k": "v"}}))
    resend = {"id": created.id, "action": "x", "metadata": {"k": "v"}}
    later = RECEIVED + timedelta(minutes=5)
    assert backend.append(stored("acme", resend, received=later))[0].status == "duplicate"
    with pytest.raises(Conflict):
        backend.append(stored("acme", {**resend, "action": "y"}))


def test_keep_first_keeps_the_stored_copy_and_reports_the_conflict(backend: Backend) -> None:
    backend.append(stored("acme", EVT_7))
    original = backend.get("acme", "evt-7")
    changed = {**EVT_7, "action": "org.deleted"}
    results = backend.append_keeping_first(
        stored("acme", changed, {"id": "n1", "action": "x"}, EVT_7, {"id": "n1", "action": "y"})
    )
    assert [(r.id, r.status) for r in results] == [
        ("evt-7", "conflict"), ("n1", "created"), ("evt-7", "duplicate"), ("n1", "conflict"),
    ]  # fmt: skip
    assert backend.get("acme", "evt-7") == original
    kept = backend.get("acme", "n1")
    assert kept is not None and msgspec.json.decode(kept)["action"] == "x"


def random_events(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for n in range(count):
        event: dict[str, Any] = {
            "id": f"ev-{n}",
            "action": rng.choice(["user.signed_in", "user.deleted", "monitor.down", "usera.x"]),
            # Few distinct times, so ties on occurred_at exercise the seq tiebreak.
            "timestamp": 1_700_000_000_000 + rng.randrange(20) * 1000,
            "actor": {"id": f"u{rng.randrange(4)}", "type": rng.choice(["user", "bot"])},
            "targets": [{"id": f"t{rng.randrange(5)}", "type": rng.choice(["team", "repo"])}],
            "metadata": {"note": rng.choice(["alpha beta", "gamma", "Delta_Echo 42"])},
        }
        if rng.random() < 0.2:
            event["error"] = {"code": "E", "message": "failed hard"}
        events.append(event)
    return events


QUERIES: list[dict[str, str]] = [
    {},
    {"action": "user.*"},
    {"action": "user.deleted", "order": "asc"},
    {"actor_id": "u1", "outcome": "failure"},
    {"actor_type": "bot", "target_type": "repo"},
    {"target_id": "t3"},
    {"since": "2023-11-14T22:13:25Z", "until": "2023-11-14T22:13:33Z"},
    {"q": "gamma"},
    {"q": "alp"},
    {"q": "echo 42", "action": "user.*"},
    {"q": "failed", "order": "asc"},
    {"source": "api", "target_id": "t1", "order": "asc"},
]


@pytest.mark.parametrize("few_targets", [1, 2000], ids=["time-index", "by-seq"])
@pytest.mark.parametrize("params", QUERIES, ids=[str(q) for q in QUERIES])
def test_search_pages_agree_with_the_reference(
    tmp_path: Path, params: dict[str, str], few_targets: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "FEW_TARGETS", few_targets)
    events = random_events(7, 300)
    reference = MemoryPair()
    reference.start()
    sqlite_pair = SqlitePair(tmp_path)
    try:
        for chunk in range(0, 300, 60):
            batch = events[chunk : chunk + 60]
            reference.append(stored("acme", *batch))
            sqlite_pair.append(stored("acme", *batch))
            sqlite_pair.append(stored("noise", *batch))
        expected, got = all_pages(reference, params), all_pages(sqlite_pair, params)
        assert got == expected
        assert params == {"q": "alp"} or len(expected) > 0
    finally:
        sqlite_pair.close()


@pytest.mark.postgres
@pytest.mark.parametrize("params", QUERIES, ids=[str(q) for q in QUERIES])
def test_postgres_search_pages_agree_with_the_reference(
    tmp_path: Path, params: dict[str, str], pg_dsn: str
) -> None:
    events = random_events(7, 300)
    reference = MemoryPair()
    reference.start()
    pair = PostgresPair(tmp_path, pg_dsn)
    try:
        for chunk in range(0, 300, 60):
            batch = events[chunk : chunk + 60]
            reference.append(stored("acme", *batch))
            pair.append(stored("acme", *batch))
            pair.append(stored("noise", *batch))
        expected, got = all_pages(reference, params), all_pages(pair, params)
        assert got == expected
        assert params == {"q": "alp"} or len(expected) > 0
    finally:
        pair.close()


def all_pages(backend: Backend, params: dict[str, str]) -> list[str]:
    found: list[str] = []
    query = parse_query("acme", {**params, "limit": "7"})
    while True:
        page = backend.search(query)
        found += [msgspec.json.decode(b)["id"] for b in page.events]
        if page.next_position is None:
            return found
        query = msgspec.structs.replace(query, after=page.next_position)


def test_sqlite_appends_are_durable_across_reopen(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    pair.append(stored("acme", *({"id": f"d{n}", "action": "x"} for n in range(50))))
    pair.close()
    reopened = SqlitePair(tmp_path)
    try:
        assert reopened.get("acme", "d49") is not None
        assert reopened.append(stored("acme", {"id": "d0", "action": "x"}))[0].status == "duplicate"
        assert reopened.append(stored("acme", {"id": "d50", "action": "x"}))[0].status == "created"
    finally:
        reopened.close()


def test_sqlite_full_queue_is_an_explicit_overload_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path, queue_capacity=100)
    journal.start()
    blocker = connect(path)
    blocker.execute("BEGIN IMMEDIATE")  # the writer now waits for the lock
    try:
        futures = [
            journal.submit(stored("acme", {"id": f"q{n}", "action": "x"})) for n in range(100)
        ]
        with pytest.raises(Overloaded):
            journal.submit(stored("acme", {"id": "one-too-many", "action": "x"}))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert all(f.result(timeout=30)[0].status == "created" for f in futures)
    journal.close()
    with pytest.raises(Unavailable):
        journal.submit(stored("acme", {"id": "late", "action": "x"}))
    pair = SqlitePair(tmp_path)  # its recorder indexes what the journal holds
    assert len(pair.search(parse_query("acme", {"limit": "1000"})).events) == 100
    pair.close()


def test_sqlite_group_commit_shares_transactions(tmp_path: Path) -> None:
    commits: list[int] = []
    journal = SqliteJournal(tmp_path / "g.db", on_commit=lambda n, _s: commits.append(n))
    journal.start()
    barrier = threading.Barrier(32)

    def send(n: int) -> None:
        barrier.wait()
        journal.submit(stored("acme", {"id": f"g{n}", "action": "x"})).result(timeout=10)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    assert sum(commits) == 32
    assert len(commits) < 32  # concurrent requests shared at least one commit


def test_sqlite_failed_commit_fails_the_group_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    journal.start()
    # A trigger makes the group's transaction fail after some rows were inserted.
    trigger = connect(path)
    trigger.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.id = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    batch = stored("acme", {"id": "ok-1", "action": "x"}, {"id": "poison", "action": "x"})
    with pytest.raises(Unavailable):
        journal.submit(batch).result(timeout=10)
    trigger.execute("DROP TRIGGER boom")
    trigger.close()
    assert (
        journal.submit(stored("acme", {"id": "ok-2", "action": "x"})).result()[0].status
        == "created"
    )
    journal.close()
    pair = SqlitePair(tmp_path)
    assert pair.get("acme", "ok-1") is None and pair.get("acme", "ok-2") is not None
    pair.close()


def test_sqlite_index_follows_the_journal_and_resumes_after_a_crash(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path, batch_events=7)
    pair.append(stored("acme", *({"id": f"i{n}", "action": "x"} for n in range(20))))
    pair.recorder.sync().result(timeout=10)
    assert pair.recorder.lag() == 0
    pair.close()
    # Journal rows committed just before a crash, never indexed.
    conn = connect(tmp_path / "journal.db")
    late = stored("acme", *({"id": f"i{n}", "action": "x"} for n in range(20, 50)))
    conn.executemany(
        "INSERT INTO events (seq, tenant, id, occurred_us, received_us, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (21 + n, "acme", s.event.id, s.occurred_us, s.received_us, s.body)
            for n, s in enumerate(late)
        ],
    )
    conn.close()
    again = SqlitePair(tmp_path, batch_events=7)
    try:
        assert len(again.search(parse_query("acme", {"limit": "1000"})).events) == 50
        counted = "SELECT count(*), count(DISTINCT seq) FROM event_index"
        assert connect(tmp_path / "store.db").execute(counted).fetchone() == (50, 50)
    finally:
        again.close()


def test_sqlite_lost_store_is_rebuilt_from_the_journal(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    pair.append(stored("acme", *({"id": f"r{n}", "action": "x"} for n in range(30))))
    pair.close()
    (tmp_path / "store.db").unlink()
    for leftover in tmp_path.glob("store.db-*"):
        leftover.unlink()
    again = SqlitePair(tmp_path)
    try:
        assert len(again.search(parse_query("acme", {"limit": "1000"})).events) == 30
    finally:
        again.close()


def test_a_stale_recorder_batch_never_indexes_twice(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    pair.append(stored("acme", *({"id": f"s{n}", "action": "x"} for n in range(10))))
    pair.recorder.sync().result(timeout=10)
    pair.append(stored("acme", *({"id": f"s{n}", "action": "x"} for n in range(10, 15))))
    pair.close()
    store = connect(tmp_path / "store.db")
    # A recorder that read from the start while another indexed: what the
    # store holds is skipped, the rest indexed once, the position moved.
    store.execute("DELETE FROM event_index WHERE seq > 10")
    store.execute("UPDATE consumer_offsets SET seq = 10")
    sink = SqliteIndexSink(store)
    records = SqliteJournalReader(tmp_path / "journal.db").subscribe("stale").fetch(100)
    sink.write(Batch(records[:7]))
    assert sink.position() == 10  # nothing new in it
    # Another recorder on the same store indexes 11 - 12 meanwhile: this one
    # learns it in its transaction and indexes only what is left.
    other = SqliteIndexSink(connect(tmp_path / "store.db"))
    other.write(Batch(records[:12]))
    other.close()
    assert sink.position() == 10  # as this one last knew it
    sink.write(Batch(records))
    assert sink.position() == 15
    assert store.execute("SELECT count(*), max(seq) FROM event_index").fetchone() == (15, 15)
    sink.write(Batch([], end=20))  # an empty batch only moves the position
    assert sink.position() == 20


def test_a_killed_recorder_process_is_restarted_and_catches_up(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    try:
        pair.append(stored("acme", *({"id": f"k{n}", "action": "x"} for n in range(10))))
        assert len(pair.search(parse_query("acme", {"limit": "1000"})).events) == 10
        child = pair.recorder.process
        assert child is not None and child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=10)
        pair.append(stored("acme", *({"id": f"k{n}", "action": "x"} for n in range(10, 30))))
        deadline = time.monotonic() + 20
        while len(pair.search(parse_query("acme", {"limit": "1000"})).events) < 30:
            assert time.monotonic() < deadline, "the recorder did not come back"
            time.sleep(0.1)
        assert pair.recorder.healthy() and pair.recorder.process is not child
    finally:
        pair.close()


def test_the_recorder_estimates_how_far_behind_it_is_from_its_rate(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    try:
        pair.recorder.notify(500)
        assert pair.recorder.seconds_behind() == 0.0  # no rate measured yet
        pair.append(stored("acme", *({"id": f"t{n}", "action": "x"} for n in range(2000))))
        pair.recorder.sync().result(timeout=10)
        assert pair.recorder.lag() == 0 and pair.recorder.seconds_behind() == 0.0
        pair.recorder.notify(1_002_000)  # as if a million more were committed
        assert 0.0 < pair.recorder.seconds_behind() < 1_000_000 / 100
    finally:
        pair.close()


def test_a_waiter_that_gave_up_does_not_stop_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    journal.start()
    blocker = connect(path)
    blocker.execute("BEGIN IMMEDIATE")
    abandoned = journal.submit(stored("acme", {"id": "gave-up", "action": "x"}))
    assert abandoned.cancel()  # as asyncio does when a request is cancelled
    blocker.execute("ROLLBACK")
    blocker.close()
    later = journal.submit(stored("acme", {"id": "later", "action": "x"})).result(timeout=10)
    assert later[0].status == "created" and journal.healthy()
    journal.close()


def test_the_journal_head_counts_a_batch_before_its_caller_hears(tmp_path: Path) -> None:
    """A search right after an acknowledged write must wait for that write:
    it asks the recorder to sync up to the journal's head, which already
    counts the batch when the caller's future resolves."""
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.start()
    try:
        for n in range(20):
            future = journal.submit(stored("acme", {"id": f"o{n}", "action": "x"}))
            seen_at_answer: list[int] = []
            future.add_done_callback(lambda _f, seen=seen_at_answer: seen.append(journal.head()))
            future.result(timeout=10)
            assert seen_at_answer == [n + 1]
    finally:
        journal.close()


def test_a_search_right_after_a_write_finds_it(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    try:
        for n in range(30):
            pair.journal.submit(stored("acme", {"id": f"w{n}", "action": "x"})).result(timeout=10)
            pair.recorder.sync(pair.journal.head()).result(timeout=10)
            found = pair.store.search(parse_query("acme", {"limit": "1000"})).events
            assert len(found) == n + 1
    finally:
        pair.close()


def test_a_failing_metrics_observer_never_keeps_a_commit_from_the_consumers(
    tmp_path: Path,
) -> None:
    heads: list[int] = []

    def broken_metrics(_events: int, _seconds: float) -> None:
        raise RuntimeError("a broken gauge")

    journal = SqliteJournal(
        tmp_path / "journal.db", on_commit=broken_metrics, on_durable=heads.append
    )
    journal.start()
    try:
        journal.submit(stored("acme", {"id": "m1", "action": "x"})).result(timeout=10)
        assert heads == [1] and journal.healthy()
    finally:
        journal.close()

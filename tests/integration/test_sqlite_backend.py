"""The embedded (SQLite) journal and store beyond the shared contract:
durability, group commit and its failures, the recorder process and its
position, the journal's head and observers."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from tests.backend_pairs import SqlitePair, stored

from auditlake.consumers.sink import Batch
from auditlake.core.query import parse_query
from auditlake.errors import Overloaded, Unavailable
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.sqlite_db import connect
from auditlake.store.sqlite_recorder import SqliteIndexSink


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

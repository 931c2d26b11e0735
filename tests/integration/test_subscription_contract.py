"""One contract suite for the read side of every journal backend (memory
and SQLite): `JournalReader.subscribe` and its `Subscription`, as
`journal.base.Subscription` states it. A later backend plugs in as one more
`reader` parameter."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol

import msgspec
import pytest

from auditlake.core.event import EventInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.journal.base import Journal, JournalReader, Record
from auditlake.journal.memory import MemoryEventLog
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.sqlite_db import connect


class Appender(Protocol):
    def __call__(self, count: int, *, received: datetime | None = None) -> list[StoredEvent]: ...


@dataclass
class Backend:
    journal: Journal
    reader: JournalReader
    append: Appender


def events(count: int, start: int, received: datetime) -> list[StoredEvent]:
    origin = Origin("acme", "key:t", "api", received)
    inputs = [EventInput(action="x", id=f"e{start + i}") for i in range(count)]
    return normalize(inputs, origin, Limits())


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    journal: Journal
    reader: JournalReader
    if request.param == "memory":
        log = MemoryEventLog()
        journal, reader = log, log
    else:
        path = tmp_path / "journal.db"
        journal, reader = SqliteJournal(path), SqliteJournalReader(path)
    journal.start()
    appended = 0

    def append(count: int, *, received: datetime | None = None) -> list[StoredEvent]:
        nonlocal appended
        batch = events(count, appended, received or datetime.now(UTC))
        journal.submit(batch).result(timeout=10)
        appended += count
        return batch

    yield Backend(journal, reader, append)
    journal.close()


def ids(records: list[Record]) -> list[str]:
    return [record.event().id for record in records]


def test_fetch_reads_in_order_after_the_last_record_fetched(backend: Backend) -> None:
    backend.append(5)
    subscription = backend.reader.subscribe("archiver")
    first = subscription.fetch(3)
    assert ids(first) == ["e0", "e1", "e2"]
    assert [r.position for r in first] == sorted(r.position for r in first)
    assert ids(subscription.fetch(10)) == ["e3", "e4"]
    assert subscription.fetch(10) == []  # nothing more, and no wait asked
    assert backend.reader.head() == first[0].position + 4


def test_fetch_stops_at_the_record_that_reaches_max_bytes(backend: Backend) -> None:
    backend.append(6)
    subscription = backend.reader.subscribe("archiver")
    size = len(subscription.fetch(1)[0].body)  # e0; the events are of one size
    assert ids(subscription.fetch(10, max_bytes=2 * size)) == ["e1", "e2"]
    assert ids(subscription.fetch(10, max_bytes=2 * size - 1)) == ["e3", "e4"]
    assert ids(subscription.fetch(10, max_bytes=1)) == ["e5"]  # always one at least
    backend.append(2)
    assert ids(subscription.fetch(1, max_bytes=10**9)) == ["e6"]  # the count still bounds


def test_after_a_lag_measures_from_a_sinks_own_position(backend: Backend) -> None:
    backend.append(4)
    subscription = backend.reader.subscribe("recorder")
    second = subscription.fetch(2)[1].position
    assert subscription.lag()[0] == 4  # nothing committed
    assert subscription.lag(after=second)[0] == 2
    assert subscription.lag(after=backend.reader.head()) == (0, 0.0)


def test_a_commit_is_where_the_next_subscription_resumes(backend: Backend) -> None:
    backend.append(6)
    first = backend.reader.subscribe("archiver")
    records = first.fetch(4)
    first.commit(records[1].position)
    assert first.committed() == records[1].position
    first.close()
    again = backend.reader.subscribe("archiver")
    assert again.committed() == records[1].position
    # e2 and e3 were fetched but not committed: delivered again
    assert ids(again.fetch(10)) == ["e2", "e3", "e4", "e5"]
    other = backend.reader.subscribe("forwarder")  # each name has its own position
    assert other.committed() == 0
    assert ids(other.fetch(2)) == ["e0", "e1"]


def test_a_commit_never_goes_backwards(backend: Backend) -> None:
    backend.append(3)
    subscription = backend.reader.subscribe("archiver")
    records = subscription.fetch(3)
    subscription.commit(records[2].position)
    with pytest.raises(ValueError, match="behind"):
        subscription.commit(records[0].position)
    subscription.commit(records[2].position)  # the same position again is fine
    assert subscription.committed() == records[2].position


def test_seek_reads_after_the_position_a_sink_kept(backend: Backend) -> None:
    backend.append(5)
    subscription = backend.reader.subscribe("recorder")
    positions = [r.position for r in subscription.fetch(5)]
    subscription.seek(positions[2])
    assert ids(subscription.fetch(10)) == ["e3", "e4"]
    subscription.seek(0)
    assert ids(subscription.fetch(1)) == ["e0"]
    assert subscription.committed() == 0  # seeking commits nothing


def test_lag_counts_what_waits_after_the_commit_and_its_age(backend: Backend) -> None:
    subscription = backend.reader.subscribe("archiver")
    assert subscription.lag() == (0, 0.0)
    backend.append(3, received=datetime.now(UTC) - timedelta(seconds=30))
    backend.append(2)
    waiting, age = subscription.lag()
    assert waiting == 5
    assert 29 < age < 60
    records = subscription.fetch(3)
    assert subscription.lag()[0] == 5  # fetching is not committing
    subscription.commit(records[-1].position)
    waiting, age = subscription.lag()
    assert waiting == 2 and age < 10


def test_a_waiting_fetch_returns_when_events_come(backend: Backend) -> None:
    subscription = backend.reader.subscribe("archiver")
    started = time.monotonic()
    assert subscription.fetch(10, max_wait=0.2) == []
    assert time.monotonic() - started >= 0.2
    threading.Timer(0.3, backend.append, (2,)).start()
    started = time.monotonic()
    got = subscription.fetch(10, max_wait=10)
    assert ids(got) in (["e0", "e1"], ["e0"])  # the first that came, at least
    assert time.monotonic() - started < 5


def test_wake_ends_a_waiting_fetch(backend: Backend) -> None:
    subscription = backend.reader.subscribe("archiver")
    threading.Timer(0.3, subscription.wake).start()
    started = time.monotonic()
    assert subscription.fetch(10, max_wait=10) == []
    assert time.monotonic() - started < 5


def _fetch_commit_then_fetch(path: str, pipe: Connection) -> None:
    """A consumer child: commit a first batch, fetch a second, then hang."""
    subscription = SqliteJournalReader(Path(path)).subscribe("killed")
    first = subscription.fetch(3)
    subscription.commit(first[-1].position)
    second = subscription.fetch(3)
    pipe.send([r.position for r in second])
    time.sleep(60)  # killed here, before the second batch is committed


def test_a_sigkilled_consumer_gets_its_uncommitted_batch_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    journal.start()
    journal.submit(events(8, 0, datetime.now(UTC))).result(timeout=10)
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_fetch_commit_then_fetch, args=(str(path), child_end))
    child.start()
    try:
        assert parent_end.poll(60), "the child fetched nothing"
        uncommitted = parent_end.recv()
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    finally:
        if child.is_alive():
            child.kill()
    again = SqliteJournalReader(path).subscribe("killed")
    redelivered = again.fetch(3)
    assert [r.position for r in redelivered] == uncommitted
    assert ids(redelivered) == ["e3", "e4", "e5"]
    journal.close()


def test_a_record_decodes_to_the_stored_event(backend: Backend) -> None:
    [sent] = backend.append(1)
    [record] = backend.reader.subscribe("archiver").fetch(1)
    assert record.body == sent.body
    assert record.received_us == sent.received_us
    assert record.event() == msgspec.json.decode(sent.body, type=type(sent.event))


def test_a_record_is_read_by_its_position(backend: Backend) -> None:
    backend.append(3)
    records = backend.reader.subscribe("archiver").fetch(3)
    again = backend.reader.record(records[1].position)
    assert again == records[1]
    assert backend.reader.record(records[-1].position + 100) is None
    assert backend.reader.record(0) is None


def test_another_view_of_a_consumer_sees_its_commits(backend: Backend) -> None:
    """The parent's view of a consumer child (lag for /metrics) follows the
    child's commits."""
    backend.append(4)
    view = backend.reader.subscribe("archiver")
    assert view.lag()[0] == 4
    worker = backend.reader.subscribe("archiver")
    worker.commit(worker.fetch(3)[-1].position)
    assert view.lag()[0] == 1
    assert view.committed() == worker.committed()


def test_two_views_of_one_consumer_never_move_it_backwards(backend: Backend) -> None:
    backend.append(5)
    first, second = (backend.reader.subscribe("archiver") for _ in range(2))
    records = first.fetch(5)
    first.commit(records[4].position)
    with pytest.raises(ValueError, match="behind"):
        second.commit(records[1].position)  # it read before the other's commit
    assert backend.reader.subscribe("archiver").committed() == records[4].position


def test_gaps_left_by_retention_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    journal.start()
    journal.submit(events(6, 0, datetime.now(UTC))).result(timeout=10)
    journal.close()
    conn = connect(path)
    conn.execute("DELETE FROM events WHERE id IN ('e1', 'e2', 'e4')")  # as retention does
    conn.close()
    subscription = SqliteJournalReader(path).subscribe("archiver")
    assert subscription.lag()[0] >= 3  # counted by position: an upper bound
    assert ids(subscription.fetch(10)) == ["e0", "e3", "e5"]

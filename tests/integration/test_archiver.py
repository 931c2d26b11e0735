"""The archiver as a journal consumer: Parquet partitions by tenant and hour
in a local folder, merges on redelivery and late events, racing writers,
batch triggers and dead letters."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from auditlake.consumers.archiver import Archiver
from auditlake.consumers.runner import ConsumerRunner
from auditlake.consumers.sink import Batch
from auditlake.consumers.state import ConsumerState
from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.times import format_rfc3339 as rfc3339
from auditlake.errors import AuditlakeError, ConfigError, Unavailable
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.lake.layout import read_rows
from auditlake.lake.objects import LocalObjects
from auditlake.sqlite_db import connect

HOUR = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def append(journal: SqliteJournal, tenant: str, ids: list[str], at: datetime) -> None:
    origin = Origin(tenant, "key:test", "api", datetime.now(UTC))
    inputs = [
        EventInput(action="user.signed_in", id=i, occurred_at=rfc3339(at + timedelta(seconds=n)))
        for n, i in enumerate(ids)
    ]
    journal.submit(normalize(inputs, origin, Limits())).result(timeout=10)


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.start()
    state = ConsumerState(tmp_path / "consumers.db")
    objects = LocalObjects(tmp_path / "lake")
    yield journal, state, objects, tmp_path
    journal.close()
    state.close()


def runner(setup: Any, sink: Any = None, **options: Any) -> ConsumerRunner:
    _journal, state, objects, tmp_path = setup
    now_us = options.get("now_us")
    clock = (lambda: now_us() / 1e6) if now_us else time.time  # one clock for both
    reader = SqliteJournalReader(tmp_path / "journal.db", clock=clock)
    options.setdefault("resume_from", state.legacy_cursor("archiver"))
    return ConsumerRunner(
        "archiver", sink or Archiver(objects), reader, state.dead_letters, **options
    )


def lake_ids(objects: LocalObjects) -> list[tuple[str, str]]:
    found = []
    for path in objects.list(""):
        stored = objects.get(path)
        assert stored is not None
        found += [(r["tenant"], r["id"]) for r in read_rows(stored[0])]
    return found


def test_partitions_by_tenant_and_hour_readable_by_duckdb(setup: Any) -> None:
    journal, _state, objects, tmp_path = setup
    append(journal, "acme", [f"a{n}" for n in range(5)], HOUR + timedelta(minutes=59, seconds=57))
    append(journal, "globex", ["g1"], HOUR)
    assert runner(setup).step(flush=True) == 6
    assert objects.list("") == [
        "acme/year=2026/month=11/day=20/hour=10/events.parquet",
        "acme/year=2026/month=11/day=20/hour=11/events.parquet",
        "globex/year=2026/month=11/day=20/hour=10/events.parquet",
    ]
    lake = (tmp_path / "lake").as_posix()
    counted = duckdb.sql(
        f"SELECT tenant, hour, count(*) FROM read_parquet('{lake}/**/*.parquet', "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert counted == [("acme", 10, 3), ("acme", 11, 2), ("globex", 10, 1)]
    # The README's form: the tenant's day folder named in the path.
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (day,) = re.findall(r"read_parquet\('data/lake/([^']+)'", readme)
    assert day == "acme/year=2026/month=11/day=20/*/*.parquet"
    by_day = duckdb.sql(
        f"SELECT tenant, count(*) FROM read_parquet('{lake}/{day}', hive_partitioning = true) "
        "GROUP BY 1"
    ).fetchall()
    assert by_day == [("acme", 5)]
    # The README's command runs as written (DuckDB's Python package, which
    # `make run` installs; the duckdb CLI is not).
    (command,) = re.findall(r'\.venv/bin/python -c "(import duckdb;.*?)"\n', readme, re.S)
    shown = subprocess.run(
        [sys.executable, "-c", command.replace("data/lake", lake)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "user.signed_in" in shown.stdout and "5" in shown.stdout


def test_redelivery_and_late_events_leave_each_event_once_in_its_hour(setup: Any) -> None:
    journal, _state, objects, tmp_path = setup
    append(journal, "acme", ["e1", "e2"], HOUR)
    runner(setup).step(flush=True)
    conn = connect(tmp_path / "journal.db")  # a crash before the commit
    conn.execute("DELETE FROM subscriptions")
    conn.close()
    archiver = runner(setup)  # the next process
    assert archiver.step(flush=True) == 2
    append(journal, "acme", ["late"], HOUR + timedelta(minutes=30))
    archiver.step(flush=True)
    path = "acme/year=2026/month=11/day=20/hour=10/events.parquet"
    stored = objects.get(path)
    assert stored is not None
    rows = read_rows(stored[0])
    assert [r["id"] for r in rows] == ["e1", "e2", "late"]  # sorted by occurred_at
    assert sorted(lake_ids(objects)) == [("acme", "e1"), ("acme", "e2"), ("acme", "late")]


def test_two_archivers_racing_on_one_partition_lose_nothing(setup: Any) -> None:
    journal, _state, objects, tmp_path = setup
    ids = [f"r{n}" for n in range(200)]
    append(journal, "acme", ids, HOUR)
    # Two independent consumers (own names and state) write the same events at once.
    states = [ConsumerState(tmp_path / f"c{n}.db") for n in range(2)]
    racers = [
        ConsumerRunner(f"archiver-{n}", Archiver(LocalObjects(tmp_path / "lake")),
                       SqliteJournalReader(tmp_path / "journal.db"), s.dead_letters,
                       batch_events=7, catch_up_events=7)
        for n, s in enumerate(states)
    ]  # fmt: skip
    threads = [
        threading.Thread(target=lambda r=r: [r.step(flush=True) for _ in range(40)]) for r in racers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(lake_ids(objects)) == sorted(("acme", i) for i in ids)
    for s in states:
        s.close()


def test_a_batch_waits_for_its_size_or_its_age(setup: Any) -> None:
    journal, _state, _objects, _tmp = setup
    clock = {"now": datetime.now(UTC)}
    archiver = runner(setup, batch_events=3, batch_seconds=60.0,
                      now_us=lambda: int(clock["now"].timestamp() * 1e6))  # fmt: skip
    append(journal, "acme", ["b1", "b2"], HOUR)
    assert archiver.step() == 0  # 2 of 3, and young
    clock["now"] += timedelta(seconds=61)
    assert archiver.step() == 2  # old enough
    append(journal, "acme", ["b3", "b4", "b5"], HOUR)
    clock["now"] -= timedelta(seconds=61)
    assert archiver.step() == 3  # full


class FlakySink:
    def __init__(
        self, poison: str | None = None, transient: bool = False, misconfigured: bool = False
    ) -> None:
        self.poison = poison
        self.transient = transient
        self.misconfigured = misconfigured
        self.written: list[str] = []
        self.calls = 0

    def write(self, batch: Batch) -> None:
        events = batch.events()
        self.calls += 1
        if self.transient:
            raise Unavailable("the bucket is unreachable")
        if self.misconfigured:
            raise ConfigError("S3 put failed: PermissionDeniedError (HTTP 403)")
        if any(e.id == self.poison for e in events):
            raise AuditlakeError(f"cannot archive {self.poison}")
        self.written += [e.id for e in events]


def test_a_permanent_failure_dead_letters_only_its_event(setup: Any) -> None:
    journal, state, _objects, _tmp = setup
    append(journal, "acme", ["p1", "poison", "p3"], HOUR)
    sink = FlakySink(poison="poison")
    archiver = runner(setup, sink)
    assert archiver.step(flush=True) == 3
    assert sink.written == ["p1", "p3"]
    [letter] = state.dead_letters.letters("archiver")
    assert (letter.position, letter.key, letter.reason) == (2, "2", "cannot archive poison")
    assert msgspec.json.decode(letter.item)["id"] == "poison"  # kept with the letter
    assert archiver.committed() == 3


def test_a_transient_failure_or_a_wrong_setup_keeps_the_cursor(setup: Any) -> None:
    journal, state, _objects, _tmp = setup
    append(journal, "acme", ["t1", "t2"], HOUR)
    with pytest.raises(Unavailable):
        runner(setup, FlakySink(transient=True)).step(flush=True)
    with pytest.raises(ConfigError):  # denied access is no fault of the events
        runner(setup, FlakySink(misconfigured=True)).step(flush=True)
    assert runner(setup).committed() == 0 and state.dead_letters.letters("archiver") == []


def test_a_poison_event_is_found_by_halving_the_batch(setup: Any) -> None:
    journal, state, _objects, _tmp = setup
    ids = [f"h{n:02d}" for n in range(32)]
    append(journal, "acme", ids, HOUR)
    sink = FlakySink(poison="h21")
    archiver = runner(setup, sink)
    assert archiver.step(flush=True) == 32
    assert sink.written == [i for i in ids if i != "h21"]
    assert [letter.position for letter in state.dead_letters.letters("archiver")] == [22]
    assert archiver.output_through() == 21 and archiver.committed() == 32
    assert sink.calls <= 1 + 2 * 5  # halving 32 down to 1: two writes per level


def test_the_thread_flushes_on_stop(setup: Any) -> None:
    journal, _state, objects, _tmp = setup
    archiver = runner(setup, batch_seconds=3600.0, poll_seconds=0.05)
    archiver.start()
    append(journal, "acme", ["s1", "s2"], HOUR)
    archiver.close()
    assert sorted(lake_ids(objects)) == [("acme", "s1"), ("acme", "s2")]


def test_dead_letters_can_be_replayed_once_the_sink_takes_them(setup: Any) -> None:
    journal, state, _objects, _tmp = setup
    append(journal, "acme", ["d1", "poison"], HOUR)
    sink = FlakySink(poison="poison")
    archiver = runner(setup, sink)
    archiver.step(flush=True)
    assert archiver.replay_dead_letters() == (0, 1)  # still refused
    sink.poison = None
    assert archiver.replay_dead_letters() == (1, 0)
    assert sink.written == ["d1", "poison"] and state.dead_letters.letters("archiver") == []


def test_during_a_burst_full_batches_wait_for_their_age(setup: Any) -> None:
    journal, _state, _objects, _tmp = setup
    clock = {"now": datetime.now(UTC)}
    archiver = runner(setup, batch_events=3, batch_seconds=60.0,
                      now_us=lambda: int(clock["now"].timestamp() * 1e6))  # fmt: skip
    append(journal, "acme", ["c1", "c2", "c3"], HOUR)
    assert archiver.step() == 3  # full, and nothing known about the rate yet
    append(journal, "acme", [f"d{n}" for n in range(6)], HOUR)
    clock["now"] += timedelta(seconds=1)
    assert archiver.step() == 0  # 6 events in a second: more than a batch per second
    clock["now"] += timedelta(seconds=60)
    assert archiver.step() == 6  # old enough now, burst or not: all that waits
    assert archiver.step() == 0  # all archived


def test_a_consumer_behind_takes_larger_batches_up_to_its_catch_up_size(setup: Any) -> None:
    journal, _state, objects, _tmp = setup
    archiver = runner(setup, batch_events=3, catch_up_events=5)
    append(journal, "acme", [f"k{n}" for n in range(12)], HOUR)
    assert [archiver.step() for _ in range(3)] == [5, 5, 0]  # then 2 of 3, young
    assert archiver.step(flush=True) == 2
    assert archiver.committed() == 12 and len(lake_ids(objects)) == 12


def test_a_cursor_kept_before_subscriptions_is_where_the_consumer_resumes(setup: Any) -> None:
    journal, state, objects, _tmp = setup
    append(journal, "acme", [f"u{n}" for n in range(5)], HOUR)
    state._conn.execute(  # as an earlier release left it
        "INSERT INTO cursors (consumer, seq, updated_at) VALUES ('archiver', 3, 'then')"
    )
    archiver = runner(setup)
    assert archiver.committed() == 3
    assert archiver.step(flush=True) == 2
    assert sorted(lake_ids(objects)) == [("acme", "u3"), ("acme", "u4")]


def test_an_old_cursor_past_the_journals_head_is_not_adopted(setup: Any) -> None:
    """A journal made anew beside an old consumers database: resuming from
    the old cursor would skip the new journal's first events."""
    journal, state, objects, _tmp = setup
    append(journal, "acme", ["n0", "n1"], HOUR)
    state._conn.execute(
        "INSERT INTO cursors (consumer, seq, updated_at) VALUES ('archiver', 500, 'then')"
    )
    archiver = runner(setup)
    assert archiver.committed() == 0
    assert archiver.step(flush=True) == 2
    assert sorted(lake_ids(objects)) == [("acme", "n0"), ("acme", "n1")]

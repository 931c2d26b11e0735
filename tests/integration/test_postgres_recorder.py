"""The recorder's PostgreSQL sink: typed rows, exactly once by (tenant, id)
whatever the timestamps, a redelivered batch stored once, and two recorders
taking turns on the position."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
import psycopg
import pytest

from auditlake.consumers.runner import ConsumerRunner
from auditlake.consumers.sink import Batch
from auditlake.core.event import Event, EventInput
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.dead_letters import MemoryDeadLetters
from auditlake.errors import Unavailable
from auditlake.journal.base import Record
from auditlake.journal.memory import MemoryEventLog
from auditlake.postgres_db import connect, migrate
from auditlake.store import postgres_recorder
from auditlake.store.postgres_recorder import PostgresIndexSink

RECEIVED = datetime(2026, 11, 30, 12, tzinfo=UTC)


def records(first: int, *events: dict[str, Any], tenant: str = "acme") -> list[Record]:
    origin = Origin(tenant, "key:t", "api", RECEIVED)
    inputs = [msgspec.convert({"action": "x", **e}, EventInput) for e in events]
    return [
        Record(first + n, s.received_us, s.occurred_us, s.event.tenant, s.body)
        for n, s in enumerate(normalize(inputs, origin, Limits()))
    ]


@pytest.fixture
def sink(pg_dsn: str) -> Any:
    with connect(pg_dsn) as conn:
        migrate(conn, "store")
    opened = PostgresIndexSink(partial(connect, pg_dsn, autocommit=True))
    yield opened
    opened.close()


def one(dsn: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def test_a_batch_becomes_typed_rows_with_the_position(sink: PostgresIndexSink, pg_dsn: str) -> None:
    batch = records(
        1,
        {"id": "a", "action": "user.signed_in", "occurred_at": "2026-11-01T10:00:00Z",
         "actor": {"id": "u1", "type": "user", "name": "Renée", "ip": "2001:DB8::1"},
         "targets": [{"id": "t1", "type": "repo"}, {"id": "t2"}],
         "context": {"ip": "not an ip", "user_agent": "curl"}, "metadata": {"plan": "pro"}},
        {"id": "b", "error": {"code": "E1", "message": "Quota exceeded"}},
    )  # fmt: skip
    sink.write(Batch(batch))
    assert sink.position() == 2
    assert one(pg_dsn, "SELECT position FROM consumer_positions") == [(2,)]
    rows = one(
        pg_dsn,
        "SELECT id, actor_name, host(actor_ip), context_ip, context_user_agent, metadata,"
        " error_code, outcome FROM events ORDER BY seq",
    )
    assert rows == [
        ("a", "Renée", "2001:db8::1", None, "curl", {"plan": "pro"}, None, "success"),
        ("b", None, None, None, None, {}, "E1", "failure"),
    ]
    assert one(pg_dsn, "SELECT tenant, target_id, target_type FROM event_targets ORDER BY 2") == [
        ("acme", "t1", "repo"), ("acme", "t2", None)
    ]  # fmt: skip
    # The body as the journal stored it; `q` words folded, matched by prefix.
    assert one(pg_dsn, "SELECT body FROM events WHERE id = 'a'") == [(batch[0].body,)]
    assert one(pg_dsn, "SELECT id FROM events WHERE words @@ 'renee:*'::tsquery") == [("a",)]
    assert one(pg_dsn, "SELECT id FROM events WHERE words @@ 'quot:*'::tsquery") == [("b",)]


def test_a_redelivered_batch_and_a_repeated_key_are_stored_once(
    sink: PostgresIndexSink, pg_dsn: str
) -> None:
    batch = records(1, {"id": "a"}, {"id": "b"})
    sink.write(Batch(batch))
    sink.write(Batch(batch))  # redelivered: skipped by position
    # The same (tenant, id) again later in the journal, another timestamp
    # (a journal restored from an older copy): the key decides.
    again = records(3, {"id": "a", "occurred_at": "2020-01-01T00:00:00Z"}, {"id": "c"})
    sink.write(Batch(again))
    assert one(pg_dsn, "SELECT id, seq FROM events ORDER BY seq") == [("a", 1), ("b", 2), ("c", 4)]
    assert one(pg_dsn, "SELECT count(*) FROM event_keys") == [(3,)]
    assert sink.position() == 4
    sink.write(Batch([], end=9))  # an empty batch only moves the position
    assert one(pg_dsn, "SELECT position FROM consumer_positions") == [(9,)]


def test_two_recorders_take_turns_and_the_late_one_writes_nothing(
    sink: PostgresIndexSink, pg_dsn: str
) -> None:
    other = PostgresIndexSink(partial(connect, pg_dsn, autocommit=True))
    try:
        batch = records(1, *({"id": f"s{n}"} for n in range(6)))
        assert sink.position() == 0  # read before the other one writes
        other.write(Batch(batch[:4]))
        assert sink.position() == 0  # as this one last knew it
        sink.write(Batch(batch))  # learns 4 under the lock, stores only 5 - 6
        assert sink.position() == 6
        assert one(pg_dsn, "SELECT count(*), max(seq) FROM events") == [(6, 6)]
    finally:
        other.close()


def test_a_nul_character_is_stored_as_u_fffd_in_the_columns_and_kept_in_the_body(
    sink: PostgresIndexSink, pg_dsn: str
) -> None:
    batch = records(
        1,
        {"id": "n1", "actor": {"id": "u\u0000x", "name": "lit\\u0000eral"}},
        {"id": "n2", "metadata": {"k": "a\u0000b"}, "targets": [{"id": "t\u0000"}]},
    )
    sink.write(Batch(batch))
    columns = "SELECT actor_id, actor_name, metadata ->> 'k' FROM events ORDER BY seq"
    assert one(pg_dsn, columns) == [
        ("u\ufffdx", "lit\\u0000eral", None), (None, None, "a\ufffdb")
    ]  # fmt: skip
    assert one(pg_dsn, "SELECT target_id FROM event_targets") == [("t\ufffd",)]
    assert one(pg_dsn, "SELECT body FROM events ORDER BY seq") == [(r.body,) for r in batch]


def test_a_dropped_connection_is_transient_and_the_next_write_reconnects(
    sink: PostgresIndexSink, pg_dsn: str
) -> None:
    sink.write(Batch(records(1, {"id": "r1"})))
    # The server ends the recorder's session (a restart, a failover).
    one(pg_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid != pg_backend_pid()")  # fmt: skip
    retried = Batch(records(2, {"id": "r2"}, {"id": "r3"}))
    with pytest.raises(Unavailable, match="unreachable") as caught:
        sink.write(retried)
    assert caught.value.transient
    sink.write(retried)  # as the runner retries it: a new connection
    assert one(pg_dsn, "SELECT id FROM events ORDER BY seq") == [("r1",), ("r2",), ("r3",)]
    assert sink.position() == 3


def test_a_value_the_store_refuses_is_set_aside_and_the_rest_stored(
    sink: PostgresIndexSink, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(record: Record, event: Event) -> tuple[Any, ...]:
        row = original(record, event)
        if event.id == "bad":  # a NUL in the actor's name, as if one slipped through
            return (*row[:12], "a\x00b", *row[13:])
        return row

    original = postgres_recorder.event_row
    monkeypatch.setattr(postgres_recorder, "event_row", refused)
    journal = MemoryEventLog()
    journal.start()
    origin = Origin("acme", "key:t", "api", RECEIVED)
    inputs = [msgspec.convert({"id": i, "action": "x"}, EventInput) for i in ("g1", "bad", "g2")]
    journal.submit(normalize(inputs, origin, Limits())).result()
    letters = MemoryDeadLetters()
    runner = ConsumerRunner("recorder", sink, journal, letters)
    assert runner.step(flush=True) == 3
    assert one(pg_dsn, "SELECT id FROM events ORDER BY seq") == [("g1",), ("g2",)]
    assert [(d.position, "cannot hold" in d.reason) for d in letters.letters("recorder")] == [
        (2, True)
    ]
    assert sink.position() == 3

"""The journal + store backends as the contract suites drive them (memory,
SQLite, and PostgreSQL for the store with the embedded journal), and what
those suites feed them."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import msgspec

from auditlake.app import build_recorder
from auditlake.config import Settings
from auditlake.consumers.runner import ConsumerRunner
from auditlake.core.event import EventInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.query import Query, parse_query
from auditlake.dead_letters import MemoryDeadLetters
from auditlake.journal.base import AppendResult
from auditlake.journal.memory import MemoryEventLog
from auditlake.journal.sqlite import SqliteJournal
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.postgres_db import connect as connect_pg
from auditlake.postgres_db import migrate as migrate_pg
from auditlake.store.base import Page
from auditlake.store.postgres import PostgresStore
from auditlake.store.postgres_recorder import PostgresIndexSink
from auditlake.store.recorder_process import RecorderProcess
from auditlake.store.sqlite import SqliteStore


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


RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def stored(
    tenant: str, *events: dict[str, Any], received: datetime = RECEIVED, caller: str = "key:t"
) -> list[StoredEvent]:
    origin = Origin(tenant, caller, "api", received)
    inputs = [msgspec.convert(e, EventInput) for e in events]
    return normalize(inputs, origin, Limits())


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


def all_pages(backend: Backend, params: dict[str, str]) -> list[str]:
    found: list[str] = []
    query = parse_query("acme", {**params, "limit": "7"})
    while True:
        page = backend.search(query)
        found += [msgspec.json.decode(b)["id"] for b in page.events]
        if page.next_position is None:
            return found
        query = msgspec.structs.replace(query, after=page.next_position)

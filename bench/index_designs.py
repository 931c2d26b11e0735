"""Indexing cost of two search-index designs over the same journal, on one core.

    .venv/bin/python bench/index_designs.py [--events N] [--rounds R]

Batch ingest is bound by indexing for search (docs/benchmarks.md). This
measures, over the same journal rows and in one process, the events/s of:

(1) "recorder": the recorder's own `step()` into the store schema (a B-tree
    index per filter, FTS5 for `q`), 20,000 events per transaction;
(2) "fts-only": the leanest alternative we found: one contentless FTS5 table
    (no column sizes) holding, next to the text words, one hashed term per
    filter value (tenant, action, outcome, source, actor, actor type, target,
    target type), plus a table from FTS rowid to journal seq; same steps.

(2) is a costing, not a design: it leaves out what it would still need (a
time-ordered unique key per event, prefix terms for `action=user.*`), so
its figure is an upper bound for that layout. Designs alternate per round
and each round reports its ratio, since this machine's speed drifts.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from auditlake.consumers.sink import Batch
from auditlake.core.event import BatchInput, Event, search_text
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.sqlite_db import DbConnection, connect, open_database, query
from auditlake.store.sqlite_recorder import SqliteIndexSink
from common import environment, journal_rows, write_results
from workload import Workload

STEP_EVENTS = 20_000  # the recorder's default step (index_batch_events)
FTS_ONLY = """
CREATE VIRTUAL TABLE terms USING fts5 (
    words, content = '', detail = none, columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE term_keys (key INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
"""
_decode = msgspec.json.Decoder(Event).decode


def build_journal(path: Path, events: int) -> None:
    """A journal of `events` workload events, normalized as the server does."""
    workload = Workload(seed=3)
    origin = Origin("bench", "key:bench", "api", datetime.now(UTC))
    journal = open_database(path, "journal")
    seq = 1
    for _ in range(0, events, 1000):
        items = [msgspec.json.encode(workload.event_json(workload.tenant())) for _ in range(1000)]
        batch = msgspec.json.decode(b'{"events":[' + b",".join(items) + b"]}", type=BatchInput)
        stored = normalize(batch.events, origin, Limits())
        journal.execute("BEGIN")
        journal.executemany(query("journal", "insert_event"), journal_rows(stored, seq))
        journal.execute("COMMIT")
        seq += len(stored)
    journal.close()


class TermHasher:
    """Short alphanumeric FTS terms for (kind, tenant, value), memoized."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str], str] = {}

    def __call__(self, kind: str, tenant: str, value: str) -> str:
        key = (kind, tenant, value)
        term = self._known.get(key)
        if term is None:
            digest = hashlib.blake2b(f"{tenant}\x1f{value}".encode(), digest_size=8).digest()
            term = kind + base64.b32encode(digest).decode()[:13].lower()
            self._known[key] = term
        return term


def fts_only_words(event: Event, term: TermHasher) -> str:
    """The filter terms and the text words of one event, as one FTS document."""
    t = event.tenant
    terms = [term("zt", t, ""), term("za", t, event.action), term("zo", t, event.outcome)]
    terms.append(term("zs", t, event.source))
    if event.actor is not None:
        terms.append(term("zu", t, event.actor.id))
        if event.actor.type:
            terms.append(term("zy", t, event.actor.type))
    for target in event.targets:
        terms.append(term("zg", t, target.id))
        if target.type:
            terms.append(term("zk", t, target.type))
    return " ".join(terms) + " " + search_text(event)


def fts_only_step(journal: DbConnection, store: DbConnection, after: int) -> int:
    """One step of the fts-only layout; returns the new position."""
    rows = journal.execute(query("journal", "events_after"), (after, STEP_EVENTS)).fetchall()
    term = TermHasher()
    docs = [(seq, fts_only_words(_decode(body), term)) for seq, _, body in rows]
    store.execute("BEGIN IMMEDIATE")
    store.executemany("INSERT INTO terms (rowid, words) VALUES (?, ?)", docs)
    store.executemany("INSERT INTO term_keys VALUES (?, ?)", [(s, s) for s, _ in docs])
    store.execute(query("store", "set_offset"), ("fts-only", rows[-1][0]))
    store.execute("COMMIT")
    return int(rows[-1][0])


def index_all(design: str, journal_path: Path, store_path: Path, events: int) -> float:
    """Events/s indexing the whole journal into a fresh store with `design`."""
    journal = connect(journal_path)
    store = open_database(store_path, "store", synchronous="NORMAL")
    store.execute("PRAGMA cache_size = -262144")  # as the recorder process sets them
    store.execute("PRAGMA wal_autocheckpoint = 50000")
    if design == "fts-only":
        store.execute(FTS_ONLY)
    sink = SqliteIndexSink(store)
    subscription = SqliteJournalReader(journal_path).subscribe("bench")
    gc.collect()
    at, started = 0, time.perf_counter()
    while at < events:
        if design == "recorder":
            sink.write(Batch(subscription.fetch(STEP_EVENTS)))
            at = sink.position()
        else:
            at = fts_only_step(journal, store, at)
    seconds = time.perf_counter() - started
    journal.close()
    store.close()
    return events / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="auditlake-index-designs-"))
    rounds = []
    try:
        print(f"building a journal of {args.events:,} events...")
        build_journal(folder / "journal.db", args.events)
        for number in range(1, args.rounds + 1):
            rates = {}
            for design in ("recorder", "fts-only"):
                store = folder / f"store-{design}-{number}.db"
                rates[design] = index_all(design, folder / "journal.db", store, args.events)
            ratio = rates["fts-only"] / rates["recorder"]
            print(
                f"round {number}: recorder {rates['recorder']:,.0f} events/s, "
                f"fts-only {rates['fts-only']:,.0f} events/s, fts-only/recorder {ratio:.2f}"
            )
            rounds.append({**rates, "ratio": ratio})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures = {"benchmark": "index-designs", **environment(), "events": args.events}
    dest = write_results("index-designs", {**figures, "rounds": rounds})
    print(f"figures written to {dest}")


if __name__ == "__main__":
    main()

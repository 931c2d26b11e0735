"""What the embedded recorder does: index journal events for search
(`event_index`, `event_targets`, `events_text`) in the store database, and
keep the typed tables of vendor events (the projections of `vendors`).

`SqliteIndexSink` is the recorder's sink on the consumer runner: it indexes
each batch in ONE transaction that also moves its position. Under load the
backlog that builds up while a batch is written becomes the next, larger
batch, which amortizes index maintenance. The store is derived data and
commits with synchronous=NORMAL: a power loss may undo its last batches,
which are then redone from the journal. `recorder_process` runs the runner
in a child process.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from auditlake.consumers.sink import Batch
from auditlake.core.event import Event, search_text
from auditlake.core.words import index_text
from auditlake.journal.base import Record, Subscription
from auditlake.sqlite_db import (
    DbConnection,
    fetch_all,
    open_database,
    query,
    scalar,
    write_transaction,
)
from auditlake.vendors import PROJECTIONS
from auditlake.vendors.projection import Projection

CONSUMER = "recorder"
log = logging.getLogger(__name__)
STORE_CACHE_KIB = 256 * 1024
STORE_CHECKPOINT_PAGES = 50_000
REINDEX_BYTES = 16 * 1024 * 1024  # of stored JSON per reindex batch


def open_index_store(path: Path) -> DbConnection:
    """The store database's connection for the recorder (migrated, with the
    tables of every projection)."""
    store = open_database(path, "store", synchronous="NORMAL")
    create_projections(store)
    # Index pages are written at random places: a larger cache and rarer
    # checkpoints let many batches dirty the same page before it is written.
    store.execute(f"PRAGMA cache_size = -{STORE_CACHE_KIB}")
    store.execute(f"PRAGMA wal_autocheckpoint = {STORE_CHECKPOINT_PAGES}")
    return store


def position(store: DbConnection) -> int:
    """The last journal seq the store has indexed (0 for none)."""
    seq = scalar(store, query("store", "get_offset"), (CONSUMER,))
    return 0 if seq is None else int(seq)


def create_projections(store: DbConnection) -> None:
    """Create the tables of every projection the store lacks."""
    for projection in PROJECTIONS:
        store.execute(projection.ddl("sqlite")).fetchall()  # every statement of the file


def _projected_row(projection: Projection, seq: int, event: Event) -> Row | None:
    """The event's row of a projection's table, if it has the vendor's
    documented shape. A vendor's odd payload must never stop indexing."""
    try:
        row = projection.row(event)
    except Exception:
        log.warning("seq %d: not a row of %s", seq, projection.table, exc_info=True)
        return None
    return None if row is None else (seq, *row)


Row = tuple[object, ...]


def search_rows(seq: int, event: Event, occurred_us: int) -> tuple[Row, list[Row], Row]:
    """The rows that make journal event `seq` searchable: its `event_index`
    row, its `event_targets` rows and its `events_text` row (the order of
    the `insert_index`, `insert_target` and `insert_text` statements)."""
    actor = event.actor
    index_row = (
        seq, event.tenant, event.action, occurred_us, actor.id if actor else None,
        actor.type if actor else None, event.outcome, event.source,
    )  # fmt: skip
    targets: list[Row] = [(seq, event.tenant, t.id, t.type) for t in event.targets]
    return index_row, targets, (seq, index_text(search_text(event)))


class SqliteIndexSink:
    """`PositionedSink` that makes journal events searchable in the store
    database: each batch's rows and the new position in one transaction,
    so after a crash indexing resumes exactly where it stopped, and two
    recorders (say, one of a process that was just killed) never index an
    event twice."""

    def __init__(self, store: DbConnection) -> None:
        self._store = store
        # As this sink last wrote or read it: only another recorder moves it,
        # which `_commit` notices in its transaction.
        self._position = position(store)

    def position(self) -> int:
        """The last journal position this sink wrote or read in the store (0
        for none); only another recorder on the same store moves it further."""
        return self._position

    def write(self, batch: Batch) -> None:
        """Index the batch's records after the stored position and move it
        to `batch.end`."""
        while (after := self._position) < batch.end:
            start = bisect.bisect_right(batch.records, after, key=_position)
            if self._commit(_rows(batch.decoded(start)), after, batch.end):
                return

    def _commit(self, rows: _Rows, after: int, end: int) -> bool:
        """Write `rows` and move the position from `after` to `end`; False
        (nothing written, the position read again) if another recorder
        moved it meanwhile."""
        store = self._store
        with write_transaction(store):
            if (stored := position(store)) != after:
                self._position = stored
                return False  # the transaction wrote nothing
            store.executemany(query("store", "insert_index"), rows.events)
            store.executemany(query("store", "insert_target"), rows.targets)
            store.executemany(query("store", "insert_text"), rows.texts)
            for projection, projected in rows.projected.items():
                store.executemany(projection.insert_sql(), projected)
            store.execute(query("store", "set_offset"), (CONSUMER, end))
        self._position = end
        return True

    def close(self) -> None:
        """Close the store connection (its position stays stored)."""
        self._store.close()

    def reindex_text(self, journal: Subscription, limit: int) -> bool:
        """Write the text index words of up to `limit` events again, when a
        migration asked for it (`text_reindex`: the words' form changed), in
        one transaction that also moves the reindex cursor. `journal` is a
        subscription used only to read (never committed).

        Returns whether a reindex is still pending after this batch (False:
        none was, or this batch finished it). Safe to repeat after a crash:
        the cursor moves in the transaction that writes the words it covers.
        """
        store = self._store
        pending = fetch_all(store, query("store", "text_reindex"))
        if not pending:
            return False
        next_seq, last_seq = (int(v) for v in pending[0])
        journal.seek(next_seq - 1)
        records = journal.fetch(limit, max_bytes=REINDEX_BYTES)
        texts = [
            (r.position, index_text(search_text(r.event())))
            for r in records
            if r.position <= last_seq
        ]
        finished = not records or records[-1].position >= last_seq
        with write_transaction(store):
            if fetch_all(store, query("store", "text_reindex")) != pending:
                return True  # another recorder did this batch; nothing written
            store.executemany(query("store", "insert_text"), texts)
            if finished:
                store.execute(query("store", "text_reindex_done"))
            else:
                store.execute(query("store", "text_reindex_moved"), (int(texts[-1][0]) + 1,))
        if finished:
            log.info("the text index has the folded words of every event again")
        return not finished


class _Rows(NamedTuple):
    events: list[Row]
    targets: list[Row]
    texts: list[Row]
    projected: dict[Projection, list[Row]]


def _rows(decoded: Iterable[tuple[Record, Event]]) -> _Rows:
    """The store rows of the records (each with its decoded event)."""
    rows = _Rows([], [], [], {})
    for record, event in decoded:
        index_row, target_rows, text_row = search_rows(record.position, event, record.occurred_us)
        rows.events.append(index_row)
        rows.targets.extend(target_rows)
        rows.texts.append(text_row)
        for projection in PROJECTIONS:
            if event.action == projection.action:
                row = _projected_row(projection, record.position, event)
                if row is not None:
                    rows.projected.setdefault(projection, []).append(row)
    return rows


def _position(record: Record) -> int:
    return record.position

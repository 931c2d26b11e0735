"""What the embedded recorder does: index journal events for search
(`event_index`, `event_targets`, `events_text`) in the store database, and
keep the typed tables of vendor events (`chainguard_registry_pull_v1`).

`step()` indexes the next events after the stored position in ONE
transaction that also moves the position, so after a crash indexing resumes
exactly where it stopped. Under load the backlog that builds up while a step
runs becomes the next, larger step, which amortizes index maintenance. The
store is derived data and commits with synchronous=NORMAL: a power loss may
undo its last steps, which are then redone from the journal.
`recorder_process` runs these steps in a child process.
"""

from __future__ import annotations

import logging
import time

import msgspec

from auditlake.core.chainguard import PULL_TYPE, pull_row
from auditlake.core.event import Event, search_text
from auditlake.core.words import index_text
from auditlake.sqlite_db import DbConnection, fetch_all, query, scalar

CONSUMER = "recorder"
log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder(Event).decode


def position(store: DbConnection) -> int:
    """The last journal seq the store has indexed (0 for none)."""
    seq = scalar(store, query("store", "get_offset"), (CONSUMER,))
    return 0 if seq is None else int(seq)


def _typed_row(seq: int, event: Event) -> list[tuple[object, ...]]:
    """The event's row of the typed pull table, if it has the documented shape.
    A vendor's odd payload must never stop indexing for everyone."""
    try:
        row = pull_row(event)
    except Exception:
        log.warning("seq %d: not a row of the typed pull table", seq, exc_info=True)
        return []
    return [] if row is None else [(seq, *row)]


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


def step(
    journal: DbConnection, store: DbConnection, after: int, limit: int
) -> tuple[int, int, float]:
    """Index up to `limit` journal events after `after` in one transaction.

    The stored position is checked inside the transaction, so two recorders
    (say, one of a process that was just killed) never index an event twice.
    Returns (events indexed, new position, seconds taken).
    """
    started = time.perf_counter()
    rows = fetch_all(journal, query("journal", "events_after"), (after, limit))
    if not rows:
        return 0, after, 0.0
    index, targets, texts, pulls = [], [], [], []
    for seq, occurred_us, body in rows:
        event = _decode(body)
        index_row, target_rows, text_row = search_rows(seq, event, occurred_us)
        index.append(index_row)
        targets += target_rows
        texts.append(text_row)
        if event.action == PULL_TYPE:
            pulls += _typed_row(seq, event)
    new_position = int(rows[-1][0])
    store.execute("BEGIN IMMEDIATE")
    try:
        moved = position(store)
        if moved != after:  # another recorder (a previous process) got there first
            store.execute("ROLLBACK")
            return 0, moved, 0.0
        store.executemany(query("store", "insert_index"), index)
        store.executemany(query("store", "insert_target"), targets)
        store.executemany(query("store", "insert_text"), texts)
        if pulls:
            store.executemany(query("store", "insert_chainguard_pull"), pulls)
        store.execute(query("store", "set_offset"), (CONSUMER, new_position))
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    return len(rows), new_position, time.perf_counter() - started


def reindex_text(journal: DbConnection, store: DbConnection, limit: int) -> bool:
    """Write the text index words of up to `limit` events again, when a
    migration asked for it (`text_reindex`: the words' form changed), in one
    transaction that also moves the reindex cursor.

    Returns whether a reindex is still pending after this batch (False: none
    was, or this batch finished it). Safe to repeat after a crash: the
    cursor moves in the transaction that writes the words it covers.
    """
    pending = fetch_all(store, query("store", "text_reindex"))
    if not pending:
        return False
    next_seq, last_seq = (int(v) for v in pending[0])
    rows = fetch_all(journal, query("journal", "events_after"), (next_seq - 1, limit))
    texts = [
        (seq, index_text(search_text(_decode(body)))) for seq, _, body in rows if seq <= last_seq
    ]
    finished = len(texts) < limit
    store.execute("BEGIN IMMEDIATE")
    try:
        if fetch_all(store, query("store", "text_reindex")) != pending:
            store.execute("ROLLBACK")  # another recorder did this batch
            return True
        store.executemany(query("store", "insert_text"), texts)
        if finished:
            store.execute(query("store", "text_reindex_done"))
        else:
            store.execute(query("store", "text_reindex_moved"), (int(texts[-1][0]) + 1,))
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    if finished:
        log.info("the text index has the folded words of every event again")
    return not finished

"""The recorder's sink into the PostgreSQL store: each batch of journal
records becomes typed rows of `events` (plus `event_keys` and
`event_targets`) in ONE transaction that also moves the recorder's position.

A batch is sent with one binary `COPY` into a temporary table; one
statement then inserts the keys that are new (`ON CONFLICT DO NOTHING
RETURNING`) and the events and targets of those keys only, so a batch
delivered twice, or an event whose (tenant, id) is stored under another
timestamp, is stored once. The position row is locked first (`FOR UPDATE`):
two recorders (say, one of a process that was just killed) take turns, and
the second finds the position moved and writes nothing.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import msgspec

from auditlake.consumers.sink import Batch
from auditlake.core.event import Event, search_text
from auditlake.core.words import search_words
from auditlake.errors import AuditlakeError, Unavailable
from auditlake.journal.base import Record
from auditlake.postgres_db import query, redact

if TYPE_CHECKING:
    import psycopg

CONSUMER = "recorder"
# The columns of the `incoming` table, in order, as psycopg's binary COPY
# names their types.
COPY_TYPES = [
    "int8", "text", "text", "text", "timestamptz", "timestamptz", "text", "text", "text",
    "int4", "text", "text", "text", "text", "inet", "jsonb", "text", "inet", "text", "text",
    "text", "text", "jsonb", "jsonb", "jsonb", "text[]", "bytea",
]  # fmt: skip
Row = tuple[Any, ...]


class PostgresIndexSink:
    """`PositionedSink` writing journal events into the PostgreSQL store.

    `connect` opens an autocommit connection (`postgres_db.connect`); a lost
    connection (a server restart, a dropped link) is a transient
    Unavailable, and the next write connects again: the runner retries the
    batch, and the position decides what is still to write. A value the
    store refuses (PostgreSQL's DataError) is a permanent AuditlakeError, so
    the runner sets that event aside in the dead letters instead of
    retrying the batch for ever.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[tuple[object, ...]]]) -> None:
        self._connect = connect
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        # As this sink last wrote or read it (-1: not read yet); only another
        # recorder moves it, which `_commit` notices under the row's lock.
        self._position = -1

    def position(self) -> int:
        """The last journal position this sink wrote or read in the store
        (0 for none); only another recorder moves it further. Unavailable
        while the store cannot be reached the first time."""
        if self._position < 0:
            with self._connection() as conn, conn.transaction():
                conn.execute(query("store", "create_position"), (CONSUMER,))
                row = conn.execute(query("store", "get_position"), (CONSUMER,)).fetchone()
            self._position = _bigint(row)
        return self._position

    def write(self, batch: Batch) -> None:
        """Store the batch's records after the stored position and move it
        to `batch.end`."""
        while (after := self.position()) < batch.end:
            start = bisect.bisect_right(batch.records, after, key=_position)
            if self._commit(rows(batch.decoded(start)), after, batch.end):
                return

    def _commit(self, new_rows: list[Row], after: int, end: int) -> bool:
        """Write `new_rows` and move the position from `after` to `end`;
        False (nothing written, the position read again) if another
        recorder moved it meanwhile."""
        with self._connection() as conn, conn.transaction():
            locked = conn.execute(query("store", "lock_position"), (CONSUMER,)).fetchone()
            stored = _bigint(locked)
            if stored != after:
                self._position = stored
                return False
            if new_rows:
                conn.execute(query("store", "create_incoming"))
                with conn.cursor().copy(query("store", "copy_incoming")) as copy:
                    copy.set_types(COPY_TYPES)
                    for row in new_rows:
                        copy.write_row(row)
                conn.execute(query("store", "insert_new"))
            conn.execute(query("store", "set_position"), (end, CONSUMER))
        self._position = end
        return True

    def close(self) -> None:
        """Close the connection (the position stays stored)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """The connection (opened if needed); a lost one is closed and
        reported as Unavailable."""
        import psycopg
        from psycopg.types.json import set_json_dumps

        if self._conn is None:
            conn = self._connect()
            set_json_dumps(msgspec.json.encode, context=conn)  # Structs as they are stored
            self._conn = conn
        try:
            yield self._conn
        except psycopg.OperationalError as exc:
            self.close()
            raise Unavailable(f"the PostgreSQL store is unreachable: {redact(str(exc))}") from None
        except psycopg.DataError as exc:  # permanent: the runner finds the event and sets it aside
            raise AuditlakeError(f"the PostgreSQL store cannot hold an event: {exc}") from None


def rows(decoded: Iterable[tuple[Record, Event]]) -> list[Row]:
    """The `incoming` rows of the records (each with its decoded event)."""
    return [event_row(record, event) for record, event in decoded]


def event_row(record: Record, event: Event) -> Row:
    """One event as the columns of `incoming` (see COPY_TYPES). PostgreSQL's
    text and jsonb cannot hold a NUL character: the typed columns get U+FFFD
    in its place; `body` keeps the event as it was accepted."""
    if _ESCAPED_NUL in record.body:
        event = _decode_event(_NUL.sub(rb"\1\\ufffd", record.body))
    actor, context, error = event.actor, event.context, event.error
    return (
        record.position, event.tenant, event.id, event.action, event.occurred_at,
        event.received_at, event.source, event.caller, event.outcome, event.version,
        actor.id if actor else None, actor.type if actor else None,
        actor.name if actor else None, actor.email if actor else None,
        _ip(actor.ip) if actor else None, actor.metadata if actor else None,
        context.location if context else None, _ip(context.ip) if context else None,
        context.user_agent if context else None, context.request_id if context else None,
        error.code if error else None, error.message if error else None,
        event.targets, event.metadata, event.raw,
        sorted(set(search_words(search_text(event)))), record.body,
    )  # fmt: skip


_ESCAPED_NUL = b"\\u0000"
# A JSON escape of NUL, not the text `\u0000` (an escaped backslash before it).
_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
_decode_event = msgspec.json.Decoder(Event).decode


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The value as an IP address for an `inet` column; None when it is not
    one (the event's body keeps it as sent)."""
    if value is None:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _position(record: Record) -> int:
    return record.position


def _bigint(row: tuple[object, ...] | None) -> int:
    """The position a `consumer_positions` row holds (0 for no row)."""
    return 0 if row is None else int(cast(int, row[0]))

"""The lake's files: one Parquet file per tenant and event hour (where it
lives: `lake.paths`), the Arrow schema, and the merge that rewrites a file
when rows arrive again (late events, redelivery, a file moved by
`lake.migrate`).

Schema (version 1, stored in the file's metadata as `auditlake.schema_version`):
typed columns for the event's fields, the targets as a list of structs, and
JSON text for `metadata`, the actor's and targets' metadata, and `raw`.
Rows are unique by `id` and sorted by (`occurred_at`, `id`). zstd compression.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from auditlake.core.event import Actor, Context, ErrorInfo, Event, Target, from_micros
from auditlake.errors import Unavailable

if TYPE_CHECKING:
    import pyarrow as pa

    from auditlake.lake.objects import ObjectStore

SCHEMA_VERSION = "1"
HOUR_US = 3_600_000_000  # a partition's span
MAX_CONFLICTS = 20  # merges of one file retried after another writer's, before giving up
_json = msgspec.json.encode
_unjson = msgspec.json.decode
log = logging.getLogger(__name__)


@functools.cache
def arrow_schema() -> pa.Schema:
    """The Arrow schema of every lake file."""
    import pyarrow as pa

    text, moment = pa.string(), pa.timestamp("us", tz="UTC")
    target = pa.struct([("id", text), ("type", text), ("name", text), ("metadata", text)])
    fields = [
        ("id", text), ("tenant", text), ("action", text), ("occurred_at", moment),
        ("received_at", moment), ("source", text), ("caller", text), ("outcome", text),
        ("version", pa.int32()), ("actor_id", text), ("actor_type", text), ("actor_name", text),
        ("actor_email", text), ("actor_ip", text), ("actor_metadata", text),
        ("targets", pa.list_(target)), ("context_location", text), ("context_ip", text),
        ("context_user_agent", text), ("context_request_id", text), ("error_code", text),
        ("error_message", text), ("metadata", text), ("raw", text),
    ]  # fmt: skip
    return pa.schema(fields, metadata={"auditlake.schema_version": SCHEMA_VERSION})


def row(event: Event) -> dict[str, Any]:
    """One event as a row of the schema."""
    return dict(zip(arrow_schema().names, _values(event), strict=True))


def _values(event: Event) -> tuple[Any, ...]:
    """The event's row as a tuple in the schema's column order: a batch's
    columns come from these by one transpose, with no dict per row."""
    actor, context, error = event.actor, event.context, event.error
    return (
        event.id, event.tenant, event.action, event.occurred_at, event.received_at,
        event.source, event.caller, event.outcome, event.version,
        actor.id if actor else None, actor.type if actor else None,
        actor.name if actor else None, actor.email if actor else None,
        actor.ip if actor else None, _text(actor.metadata) if actor else None,
        [
            {"id": t.id, "type": t.type, "name": t.name, "metadata": _text(t.metadata)}
            for t in event.targets
        ],
        context.location if context else None, context.ip if context else None,
        context.user_agent if context else None, context.request_id if context else None,
        error.code if error else None, error.message if error else None,
        _text(event.metadata), _text(event.raw),
    )  # fmt: skip


def _table(events: list[Event]) -> pa.Table:
    """The events as an Arrow table of the schema."""
    import pyarrow as pa

    schema = arrow_schema()
    columns = list(zip(*map(_values, events), strict=True)) or [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def event_from_row(r: dict[str, Any]) -> Event:
    """The event a row of the schema holds: the inverse of `row()`.

    The flat columns give back the nested parts only when they say something:
    an actor when `actor_id` is set, a context when any `context_*` column is,
    an error when `error_code` or `error_message` is; JSON text is decoded
    and a null `metadata` becomes `{}`. So `event_from_row(row(e)) == e` for
    every event except one whose `context` is an empty `Context()` or whose
    `error` is an empty `ErrorInfo()`: the row cannot tell those from None,
    and they come back as None (normalization keeps such objects as None, so
    stored events never have them).
    """
    return Event(
        id=r["id"], tenant=r["tenant"], action=r["action"],
        occurred_at=_utc(r["occurred_at"]), received_at=_utc(r["received_at"]),
        source=r["source"], caller=r["caller"], outcome=r["outcome"], version=r["version"],
        actor=_actor_from(r),
        targets=[
            Target(id=t["id"], type=t["type"], name=t["name"], metadata=_value(t["metadata"]))
            for t in r["targets"] or ()
        ],
        context=_context_from(r), error=_error_from(r),
        metadata=_metadata(r["metadata"]), raw=_value(r["raw"]),
    )  # fmt: skip


def _actor_from(r: dict[str, Any]) -> Actor | None:
    if r["actor_id"] is None:
        return None  # Actor.id is required, so no actor was there
    return Actor(
        id=r["actor_id"], type=r["actor_type"], name=r["actor_name"],
        email=r["actor_email"], ip=r["actor_ip"], metadata=_value(r["actor_metadata"]),
    )  # fmt: skip


def _context_from(r: dict[str, Any]) -> Context | None:
    context = Context(
        location=r["context_location"], ip=r["context_ip"],
        user_agent=r["context_user_agent"], request_id=r["context_request_id"],
    )  # fmt: skip
    return None if context == Context() else context


def _error_from(r: dict[str, Any]) -> ErrorInfo | None:
    if r["error_code"] is None and r["error_message"] is None:
        return None
    return ErrorInfo(code=r["error_code"], message=r["error_message"])


def _utc(value: datetime | int) -> datetime:
    # Rows from pyarrow carry its own UTC tzinfo object; events use datetime.UTC.
    return from_micros(value) if isinstance(value, int) else value.astimezone(UTC)


def _value(text: str | None) -> Any:
    return None if text is None else _unjson(text)


def _metadata(text: str | None) -> dict[str, Any]:
    value: dict[str, Any] | None = _value(text)
    return {} if value is None else value


def merge_into(
    objects: ObjectStore, path: str, merge: Callable[[bytes | None], tuple[bytes, int]]
) -> int:
    """Read the file at `path`, `merge` rows into it and write it back with a
    conditional put, merged again from the read when another writer got
    there first. Returns how many rows were new (0: nothing written).
    Raises Unavailable after `MAX_CONFLICTS` lost races."""
    for _attempt in range(MAX_CONFLICTS):
        current = objects.get(path)
        data, added = merge(current[0] if current else None)
        if not added:
            return 0  # all there already (a redelivered batch, a moved file)
        if objects.put(path, data, current[1] if current else None):
            return added
        log.info("%s changed while merging; merging again", path)
    raise Unavailable(f"{path} kept changing under {MAX_CONFLICTS} merges; retrying later")


def merge(existing: bytes | None, events: list[Event]) -> tuple[bytes, int]:
    """The partition file with `events` added: unique by id (rows already in
    the file win), sorted by (occurred_at, id). Returns the file and how many
    rows were new. Vectorized: the file's rows never become Python objects."""
    return merge_table(existing, _table(_unique_by_id(events)))


def merge_table(existing: bytes | None, new: pa.Table) -> tuple[bytes, int]:
    """`merge` for rows already in a table of the schema, unique by id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if existing is not None:
        old = read_table(existing)
        new = new.filter(pc.invert(pc.is_in(new["id"], value_set=old["id"])))
        if new.num_rows == 0:
            return existing, 0
        new_rows = new.num_rows
        table = pa.concat_tables([old, new])
    else:
        new_rows, table = new.num_rows, new
    table = table.sort_by([("occurred_at", "ascending"), ("id", "ascending")])
    return _parquet_bytes(table), new_rows


def _unique_by_id(events: list[Event]) -> list[Event]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            unique.append(event)
    return unique


def unique_rows(table: pa.Table) -> pa.Table:
    """`table` with only the first row of each id (a partition read from
    two files while `lake.migrate` moves one into the other)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pc.count_distinct(table["id"]).as_py() == table.num_rows:
        return table
    numbered = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    first = numbered.group_by("id", use_threads=False).aggregate([("_row", "min")])
    return table.take(sorted(first["_row_min"].to_pylist()))


def read_table(data: bytes) -> pa.Table:
    """A lake file as an Arrow table of the current schema and version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ParquetFile reads one file without the dataset machinery of read_table
    # (about half the time for a small partition).
    table = pq.ParquetFile(pa.BufferReader(data)).read()
    schema = arrow_schema()
    return table if table.schema.equals(schema, check_metadata=True) else table.cast(schema)


def read_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of a lake file, as `row()` makes them."""
    return [_aware(r) for r in read_table(data).to_pylist()]


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _aware(r: dict[str, Any]) -> dict[str, Any]:
    # pyarrow returns aware datetimes for tz-aware columns; keep them so
    # rows read back compare equal to rows made from events.
    for name in ("occurred_at", "received_at"):
        value = r[name]
        if isinstance(value, int):
            r[name] = from_micros(value)
    return r


def _text(value: Any) -> str | None:
    return None if value is None else _json(value).decode()

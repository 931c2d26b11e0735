"""The lake: archive rate, size against NDJSON, and a filtered lake query.

    .venv/bin/python bench/archive.py [--events N] [--query-events M] [--reps R]

In one run:

(a) archive: N workload events (normalized as the server does, 50 tenants of
    Zipf-like size, in time order over `--hours`, as they arrive) go through
    the archiver (`consumers.archiver.Archiver`) into a local lake folder in
    batches of 10,000 (the default batch), partitioned by tenant and hour:
    rows/s, and a raw baseline of the same rows written as one Parquet table
    with pyarrow (no partitioning, no merge) for the ratio;
(b) size: bytes per event in the lake's Parquet files against the same
    events as NDJSON (the canonical JSON the journal keeps, one per line);
(c) query: M events (the (a) events repeated with new ids, in time order
    over `--days`) archived the same way; then tenant + action + one day,
    newest 50 rows first, p50 and p99 of R runs, two ways: DuckDB over the
    tenant's day folder (`T/year=/month=/day=/*/*.parquet`, the README's
    example), and auditlake's own `LakeReader` (what
    `GET /v1/events` and `auditlake query --lake` use).

With `--busy-hour K`, also (d): K events of one tenant within one hour,
archived in batches of 10,000 (the default batch) and of 50,000 (the most a
consumer that is behind takes at once): every flush rewrites the hour's file,
so the cost of a flush grows with the file; rows/s and the last flush's
seconds for each.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from auditlake.consumers.archiver import Archiver
from auditlake.consumers.runner import CATCH_UP_EVENTS
from auditlake.core.event import BatchInput, Event
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.query import Filters, Query
from auditlake.lake.layout import arrow_schema, row
from auditlake.lake.objects import LocalObjects
from auditlake.lake.paths import partition_path
from auditlake.lake.reader import LakeReader
from common import environment, percentile, write_results
from workload import Workload

BATCH = 10_000
START = datetime(2026, 8, 1, tzinfo=UTC)


def make_events(count: int, seed: int, hours: float) -> list[Event]:
    """Workload events in time order over `hours`, as the server would store them."""
    workload = Workload(seed=seed)
    step = hours * 3600 / count
    events: list[Event] = []
    for _ in range(0, count, 1000):
        items = []
        for n in range(len(events), min(len(events) + 1000, count)):
            pools = workload.tenant()
            item = workload.event_json(pools)
            item["tenant"] = pools.name  # a key with the all-tenants scope would send it so
            item["occurred_at"] = (START + timedelta(seconds=n * step)).isoformat()
            items.append(item)
        batch = msgspec.json.decode(msgspec.json.encode({"events": items}), type=BatchInput)
        origin = Origin("bench", "key:bench", "api", datetime.now(UTC), may_set_tenant=True)
        events += [s.event for s in normalize(batch.events, origin, Limits())]
    return events


def archive(batches: Iterable[list[Event]], folder: Path) -> list[float]:
    """Seconds to archive each batch, as the archiver consumer does."""
    archiver = Archiver(LocalObjects(folder))
    spent = []
    for batch in batches:
        started = time.perf_counter()
        archiver.archive(batch)
        spent.append(time.perf_counter() - started)
    return spent


def raw_parquet(events: list[Event], path: Path) -> float:
    started = time.perf_counter()
    table = pa.Table.from_pylist([row(e) for e in events], schema=arrow_schema())
    pq.write_table(table, path, compression="zstd")
    return time.perf_counter() - started


def sizes(events: list[Event], folder: Path) -> tuple[float, float]:
    parquet = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
    ndjson = sum(len(msgspec.json.encode(e)) + 1 for e in events)
    return parquet / len(events), ndjson / len(events)


def copies(
    events: list[Event], count: int, seconds: float, size: int = BATCH, **fields: Any
) -> Iterator[list[Event]]:
    """`count` events in batches of `size`: `events` again with fresh ids (and
    `fields` replaced), in time order over `seconds` from START."""
    step = seconds / count
    for at in range(0, count, size):
        yield [
            msgspec.structs.replace(
                events[n % len(events)],
                id=f"c{n}",
                occurred_at=START + timedelta(seconds=n * step),
                **fields,
            )
            for n in range(at, min(count, at + size))
        ]


def probes(events: list[Event], reps: int, days: float) -> list[tuple[Event, datetime]]:
    """The (tenant and action of an event, day) each query run asks for."""
    rng = random.Random(5)
    return [
        (rng.choice(events), (START + timedelta(days=rng.uniform(0, days))).astimezone(UTC))
        for _ in range(reps)
    ]


def duckdb_times(folder: Path, asks: list[tuple[Event, datetime]]) -> list[float]:
    """Milliseconds per query, DuckDB over the tenant's day folder (the
    README's example; a glob of the whole lake lists every file first)."""
    con = duckdb.connect()
    times = []
    for probe, day in asks:
        glob = (
            f"{folder.as_posix()}/{partition_path(probe.tenant, day).rsplit('/', 2)[0]}/*/*.parquet"
        )
        sql = (
            f"SELECT id, occurred_at FROM read_parquet('{glob}', hive_partitioning = true) "
            "WHERE action = ? ORDER BY occurred_at DESC LIMIT 50"
        )
        started = time.perf_counter()
        con.execute(sql, [probe.action]).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return times


def reader_times(folder: Path, asks: list[tuple[Event, datetime]]) -> list[float]:
    """Milliseconds per query through `LakeReader`, as a search of the API does."""
    reader = LakeReader(LocalObjects(folder))
    times = []
    for probe, day in asks:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        since = int(start.timestamp() * 1_000_000)
        filters = Filters(action=probe.action, since_us=since, until_us=since + 86_400_000_000)
        started = time.perf_counter()
        reader.search(Query(probe.tenant, filters, order="desc", limit=50))
        times.append((time.perf_counter() - started) * 1000)
    return times


def busy_hour(events: list[Event], count: int, folder: Path) -> dict[str, float]:
    """(d): `count` events of one tenant in one hour, in small and in catch-up batches."""
    figures: dict[str, float] = {}
    for size in (BATCH, CATCH_UP_EVENTS):
        batches = copies(events, count, 3600, size, tenant=events[0].tenant)
        flushes = archive(batches, folder / str(size))
        spent, last = sum(flushes), flushes[-1]
        figures |= {f"busy_hour_{size}_rows_per_s": count / spent, f"busy_hour_{size}_last_s": last}
        print(
            f"(d) {count:,} events in one tenant's hour, batches of {size:,}: "
            f"{count / spent:,.0f} rows/s, last flush {last:.2f} s"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--hours", type=float, default=2.0, help="time span of (a)")
    parser.add_argument("--days", type=float, default=10.0, help="time span of (c)")
    parser.add_argument("--busy-hour", type=int, default=0, help="events of (d); 0: no (d)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="auditlake-bench-archive-"))
    figures: dict[str, Any] = {"benchmark": "archive", **environment(), **vars(args)}
    try:
        print(f"making {args.events:,} events...")
        events = make_events(args.events, seed=3, hours=args.hours)
        batches = (events[at : at + BATCH] for at in range(0, len(events), BATCH))
        seconds = sum(archive(batches, folder / "lake"))
        raw_seconds = raw_parquet(events, folder / "raw.parquet")
        per_event, ndjson = sizes(events, folder / "lake")
        figures |= {
            "archive_rows_per_s": len(events) / seconds,
            "raw_parquet_rows_per_s": len(events) / raw_seconds,
            "parquet_bytes_per_event": per_event,
            "ndjson_bytes_per_event": ndjson,
        }
        print(
            f"(a) archive {len(events) / seconds:,.0f} rows/s; raw pyarrow write "
            f"{len(events) / raw_seconds:,.0f} rows/s; ratio {raw_seconds / seconds:.2f}"
        )
        print(
            f"(b) {per_event:.1f} bytes/event in the lake, {ndjson:.1f} as NDJSON: "
            f"{ndjson / per_event:.1f}x smaller"
        )
        print(f"(c) archiving {args.query_events:,} events for the query...")
        batches = copies(events, args.query_events, args.days * 86400)
        query_seconds = sum(archive(batches, folder / "query"))
        figures["query_archive_rows_per_s"] = args.query_events / query_seconds
        asks = probes(events, args.reps, args.days)
        for name, measure in (("query", duckdb_times), ("reader_query", reader_times)):
            times = measure(folder / "query", asks)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            figures |= {f"{name}_p50_ms": p50, f"{name}_p99_ms": p99}
            print(
                f"(c) {name}: tenant + action + one day over {args.query_events:,} events: "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
        if args.busy_hour:
            figures |= busy_hour(events, args.busy_hour, folder / "busy")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"figures written to {write_results('archive', figures)}")


if __name__ == "__main__":
    main()

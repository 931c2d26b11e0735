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
    over `--days`) archived the same way; then DuckDB over the hive-partitioned
    files, tenant + action + one day, first 50 rows by time: p50 and p99 of R
    runs.
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
from auditlake.core.event import BatchInput, Event
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.lake.layout import arrow_schema, row
from auditlake.lake.objects import LocalObjects
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
        items = [
            workload.event_json(workload.tenant()) for _ in range(min(1000, count - len(events)))
        ]
        for n, item in enumerate(items, start=len(events)):
            item["occurred_at"] = (START + timedelta(seconds=n * step)).isoformat()
        batch = msgspec.json.decode(msgspec.json.encode({"events": items}), type=BatchInput)
        origin = Origin("bench", "key:bench", "api", datetime.now(UTC), may_set_tenant=True)
        events += [s.event for s in normalize(batch.events, origin, Limits())]
    return events


def archive(batches: Iterable[list[Event]], folder: Path) -> float:
    """Seconds to archive the batches, as the archiver consumer does."""
    archiver = Archiver(LocalObjects(folder))
    spent = 0.0
    for batch in batches:
        started = time.perf_counter()
        archiver.write(batch)
        spent += time.perf_counter() - started
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


def copies(events: list[Event], count: int, days: float) -> Iterator[list[Event]]:
    """`count` events in batches: `events` again with fresh ids, in time order over `days`."""
    step = days * 86400 / count
    for at in range(0, count, BATCH):
        yield [
            msgspec.structs.replace(
                events[n % len(events)], id=f"q{n}", occurred_at=START + timedelta(seconds=n * step)
            )
            for n in range(at, min(count, at + BATCH))
        ]


def query_times(folder: Path, events: list[Event], reps: int, days: float) -> list[float]:
    rng = random.Random(5)
    con = duckdb.connect()
    glob = f"{folder.as_posix()}/**/*.parquet"
    times = []
    for _ in range(reps):
        probe = rng.choice(events)
        day = (START + timedelta(days=rng.uniform(0, days))).astimezone(UTC)
        sql = (
            f"SELECT id, occurred_at FROM read_parquet('{glob}', hive_partitioning = true) "
            "WHERE tenant = ? AND year = ? AND month = ? AND day = ? AND action = ? "
            "ORDER BY occurred_at DESC LIMIT 50"
        )
        started = time.perf_counter()
        con.execute(sql, [probe.tenant, day.year, day.month, day.day, probe.action]).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--query-events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--hours", type=float, default=2.0, help="time span of (a)")
    parser.add_argument("--days", type=float, default=10.0, help="time span of (c)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="auditlake-bench-archive-"))
    figures: dict[str, Any] = {"benchmark": "archive", **environment(), **vars(args)}
    try:
        print(f"making {args.events:,} events...")
        events = make_events(args.events, seed=3, hours=args.hours)
        seconds = archive(
            (events[at : at + BATCH] for at in range(0, len(events), BATCH)), folder / "lake"
        )
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
        query_seconds = archive(copies(events, args.query_events, args.days), folder / "query")
        figures["query_archive_rows_per_s"] = args.query_events / query_seconds
        times = query_times(folder / "query", events, args.reps, args.days)
        figures |= {"query_p50_ms": percentile(times, 50), "query_p99_ms": percentile(times, 99)}
        print(
            f"(c) tenant + action + one day over {args.query_events:,} events: "
            f"p50 {figures['query_p50_ms']:.1f} ms, p99 {figures['query_p99_ms']:.1f} ms"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"figures written to {write_results('archive', figures)}")


if __name__ == "__main__":
    main()

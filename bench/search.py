"""Search latency on a large embedded database.

    .venv/bin/python bench/search.py [--events N] [--reps R]

Builds (once, cached under bench/results/search-N/) a journal.db and store.db
of N events, written with the journal's insert query and indexed with the
recorder's own `step()`, then times `SqliteStore.search` for several kinds of
query with random parameters and prints p50/p99 per kind, the plan of the main
query, and the plans of any kind slower than the 50 ms budget.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing
import random
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditlake.consumers.sink import Batch
from auditlake.core.event import StoredEvent, from_micros
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.core.query import Position, encode_cursor, parse_query
from auditlake.journal.base import Record
from auditlake.sqlite_db import DbConnection, connect, open_database, query
from auditlake.store.sqlite import SqliteStore, build_search
from auditlake.store.sqlite_recorder import SqliteIndexSink
from common import (
    RESULTS,
    Row,
    environment,
    journal_rows,
    percentile,
    schema_fingerprint,
    write_results,
)
from workload import DAY_US, TenantPools, Workload, time_window

CHUNK = 20_000  # events per generated chunk, journal commit and recorder step
JOURNAL, STORE = "journal.db", "store.db"  # as in a data folder
REQUEST = 20  # events sharing one received_at, like one batch request
MAIN_BUDGET_MS = 50.0
LIMITS = Limits()

_world: Workload | None = None


# --------------------------------------------------------------------------- build


def _init_worker(seed: int) -> None:
    global _world
    _world = Workload(seed)


def generate_chunk(job: tuple[int, int, int, int]) -> list[Row]:
    """Journal rows for events [first_seq, first_seq + count), as the group commit writes them."""
    index, first_seq, count, total = job
    world = _world
    assert world is not None
    rng = world.rng
    rng.seed(world.seed * 1_000_003 + index)
    start, end = time_window()
    step = (end - start) / total
    stored: list[StoredEvent] = []
    for offset in range(0, count, REQUEST):
        size = min(REQUEST, count - offset)
        received_us = start + int((first_seq + offset + size) * step)
        pools = world.tenant()
        inputs = [
            world.event(pools, from_micros(received_us - rng.randrange(5_000_000)))
            for _ in range(size)
        ]
        origin = Origin(pools.name, "key:benchbench00", "api", from_micros(received_us))
        stored += normalize(inputs, origin, LIMITS)
    return journal_rows(stored, first_seq)


def build(folder: Path, total: int, seed: int, workers: int) -> float:
    """Write fresh journal and store databases of `total` events; the seconds it took."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    # The product's schemas (fixture only: no fsync needed while building).
    journal = open_database(partial / JOURNAL, "journal", synchronous="OFF")
    store = open_database(partial / STORE, "store", synchronous="OFF")
    for conn in (journal, store):
        conn.execute("PRAGMA cache_size = -1000000")
    jobs = [
        (i, i * CHUNK + 1, min(CHUNK, total - i * CHUNK), total)
        for i in range((total + CHUNK - 1) // CHUNK)
    ]
    started = time.perf_counter()
    done = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(seed,)) as pool:
        pending: deque[Any] = deque()
        for job in jobs:
            pending.append(pool.apply_async(generate_chunk, (job,)))
            if len(pending) > workers + 1:  # bound memory: a few chunks in flight
                done = _insert_chunk(journal, store, pending.popleft().get(), done, total, started)
        while pending:
            done = _insert_chunk(journal, store, pending.popleft().get(), done, total, started)
    for conn in (journal, store):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    partial.replace(folder)
    return time.perf_counter() - started


def _insert_chunk(
    journal: DbConnection,
    store: DbConnection,
    rows: list[Row],
    done: int,
    total: int,
    t0: float,
) -> int:
    """Commit one chunk to the journal, then index it with the recorder's own sink."""
    journal.execute("BEGIN IMMEDIATE")
    journal.executemany(query("journal", "insert_event"), rows)
    journal.execute("COMMIT")
    now = done + len(rows)
    sink = SqliteIndexSink(store)
    # journal rows: (seq, tenant, id, occurred_us, received_us, body)
    sink.write(Batch([Record(r[0], r[4], r[3], r[1], r[5]) for r in rows]))
    assert sink.position() == now, (sink.position(), now)
    if now // 1_000_000 != done // 1_000_000 or now == total:
        elapsed = time.perf_counter() - t0
        print(f"  built {now:>11,} / {total:,} events  {now / elapsed:>9,.0f}/s", flush=True)
    return now


def ensure_database(total: int, seed: int, workers: int, rebuild: bool) -> Path:
    """The cached folder (journal.db + store.db) of `total` events, built if missing or stale."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    folder = RESULTS / f"search-{total}"
    meta_path = RESULTS / f"search-{total}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    wanted = {"events": total, "seed": seed, "schema": schema_fingerprint()}
    if not rebuild and folder.exists() and all(meta.get(k) == v for k, v in wanted.items()):
        print(f"reusing {folder} (built in {meta['build_seconds']:.0f} s)")
        return folder
    print(f"building {folder} with {total:,} events ({workers} generator processes)...")
    meta_path.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    seconds = build(folder, total, seed, workers)
    meta = {**wanted, "build_seconds": seconds, "bytes": _size(folder)}
    meta_path.write_text(json.dumps(meta))
    print(
        f"built in {seconds:.0f} s ({total / seconds:,.0f} events/s), {meta['bytes'] / 1e9:.1f} GB"
    )
    return folder


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


# --------------------------------------------------------------------------- queries


@dataclass
class Kind:
    """One kind of search: a name and a function drawing (tenant, parameters)."""

    name: str
    draw: Callable[[Workload, random.Random], tuple[str, dict[str, str]]]


def _iso(micros: int) -> str:
    return from_micros(micros).isoformat().replace("+00:00", "Z")


def _range(rng: random.Random) -> dict[str, str]:
    """A random window of 1 hour to 30 days inside the data's 90 days."""
    start, end = time_window()
    length = rng.choice((DAY_US // 24, DAY_US, 7 * DAY_US, 30 * DAY_US))
    since = rng.randrange(start, end - length)
    return {"since": _iso(since), "until": _iso(since + length)}


def _tenant(world: Workload, rng: random.Random) -> TenantPools:
    return rng.choice(world.tenants)  # uniform: small and large tenants alike


def k_main(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    return pools.name, {"action": rng.choice(world.actions), **_range(rng), "limit": "50"}


def k_prefix(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    prefix = rng.choice(sorted({a.partition(".")[0] for a in world.actions}))
    return _tenant(world, rng).name, {"action": f"{prefix}.*", **_range(rng), "limit": "50"}


def k_actor(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    return pools.name, {"actor_id": rng.choice(pools.actors).id, "limit": "50"}


def k_target(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    kind = rng.choice(sorted(pools.targets))
    return pools.name, {"target_id": rng.choice(pools.targets[kind]).id, "limit": "50"}


def k_q_rare(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    return pools.name, {"q": rng.choice(pools.actors).id, "limit": "50"}


def k_q_name(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    names = [a.name for a in pools.actors if a.name and a.type == "user"]
    return pools.name, {"q": rng.choice(names).split()[-1], **_range(rng), "limit": "50"}


def k_q_common(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    return pools.name, {"q": rng.choice(("frankfurt", "timeout", "team")), "limit": "50"}


def k_latest(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    return _tenant(world, rng).name, {"limit": "50"}


def k_deep(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    """A page far down the tenant's history: the cursor points at a random moment."""
    pools = _tenant(world, rng)
    start, end = time_window()
    params = {"limit": "50"}
    position = Position(rng.randrange(start, end), 2**62)
    params["cursor"] = encode_cursor(parse_query(pools.name, params), position)
    return pools.name, params


def k_deep_action(world: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    pools = _tenant(world, rng)
    start, end = time_window()
    params = {"action": rng.choice(world.actions), "limit": "50"}
    position = Position(rng.randrange(start, end), 2**62)
    params["cursor"] = encode_cursor(parse_query(pools.name, params), position)
    return pools.name, params


KINDS = [
    Kind("tenant+action+range (main)", k_main),
    Kind("tenant+action prefix+range", k_prefix),
    Kind("tenant latest page", k_latest),
    Kind("tenant+actor_id", k_actor),
    Kind("tenant+target_id", k_target),
    Kind("q rare word (actor id)", k_q_rare),
    Kind("q name word + range", k_q_name),
    Kind("q common word", k_q_common),
    Kind("deep cursor page", k_deep),
    Kind("deep cursor page + action", k_deep_action),
]


# --------------------------------------------------------------------------- timing


def time_kind(
    store: SqliteStore, world: Workload, kind: Kind, reps: int, seed: int
) -> dict[str, Any]:
    """Run `reps` random searches of one kind; latency figures in ms."""
    rng = random.Random(seed)
    timings: list[float] = []
    returned = 0
    deadline = time.perf_counter() + 300  # bound a pathological kind by time
    for _ in range(reps):
        tenant, params = kind.draw(world, rng)
        started = time.perf_counter()
        page = store.search(parse_query(tenant, params))
        timings.append((time.perf_counter() - started) * 1000)
        returned += len(page.events)
        if time.perf_counter() > deadline:
            break
    return {
        "kind": kind.name,
        "runs": len(timings),
        "p50_ms": percentile(timings, 50),
        "p99_ms": percentile(timings, 99),
        "max_ms": max(timings),
        "mean_rows": returned / len(timings),
    }


def explain(folder: Path, world: Workload, kind: Kind) -> list[str]:
    """SQLite's plan(s) for one drawn query of `kind`.

    When `build_search` has alternative plans (a keyword flag such as
    `few_targets`, chosen by the store at run time), each one is shown.
    """
    tenant, params = kind.draw(world, random.Random(1))
    q = parse_query(tenant, params)
    flags = [
        name
        for name, p in inspect.signature(build_search).parameters.items()
        if p.kind is p.KEYWORD_ONLY and isinstance(p.default, bool)
    ]
    relevant = [n for n in flags if any(key.split("_")[0] in n for key in params)]
    variants: list[tuple[str, dict[str, bool]]] = [("", {})]
    variants += [
        (f"with {name}=True (chosen by the store at run time):", {name: True}) for name in relevant
    ]
    conn = connect(folder / STORE, wal=False)
    conn.execute("ATTACH DATABASE ? AS journal", (str(folder / JOURNAL),))  # as SqliteStore does
    lines: list[str] = []
    try:
        for label, options in variants:
            sql, args = build_search(q, **options)
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
            if label:
                lines.append(label)
            lines += [f"{'  ' * _depth(rows, row)}{row[3]}" for row in rows]
    finally:
        conn.close()
    return lines


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent:
        depth, parent = depth + 1, parents.get(parent, 0)
    return depth


# --------------------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    folder = ensure_database(args.events, args.seed, args.workers, args.rebuild)
    world = Workload(args.seed)
    print("\nEXPLAIN QUERY PLAN, tenant+action+range (main):")
    sql, _ = build_search(
        parse_query("t", {"action": "a", "since": "2025-01-01", "until": "2025-02-01"})
    )
    print(f"  {sql}")
    for line in explain(folder, world, KINDS[0]):
        print(f"  {line}")
    store = SqliteStore(folder / STORE, folder / JOURNAL)
    results = []
    print(f"\n{'query kind':<30} {'runs':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'rows':>6}")
    for number, kind in enumerate(KINDS):
        figures = time_kind(store, world, kind, args.reps, args.seed + number)
        results.append(figures)
        print(
            f"{kind.name:<30} {figures['runs']:>5} {figures['p50_ms']:>9.2f} "
            f"{figures['p99_ms']:>9.2f} {figures['max_ms']:>9.2f} {figures['mean_rows']:>6.1f}",
            flush=True,
        )
    store.close()
    report(folder, world, args, results)


def report(
    folder: Path, world: Workload, args: argparse.Namespace, results: list[dict[str, Any]]
) -> None:
    """The target verdict, the plans of slow kinds, and the JSON figures."""
    main_p99 = results[0]["p99_ms"]
    verdict = "PASS" if main_p99 < MAIN_BUDGET_MS else "MISS"
    print(f"\n{verdict}: tenant+action+range first page p99 {main_p99:.2f} ms (target < 50 ms)")
    for kind, figures in zip(KINDS, results, strict=True):
        if figures["p99_ms"] >= MAIN_BUDGET_MS:
            print(f"\nSLOW ({figures['p99_ms']:.0f} ms p99): {kind.name}; plan:")
            for line in explain(folder, world, kind):
                print(f"  {line}")
    out = {
        "benchmark": "search",
        **environment(),
        "events": args.events,
        "reps": args.reps,
        "database_bytes": _size(folder),
        "target_main_p99_ms": MAIN_BUDGET_MS,
        "verdict": verdict,
        "kinds": results,
    }
    dest = write_results(f"search-{args.events}", out)
    print(f"\nfigures written to {dest}")
    print(json.dumps(out))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=200, help="searches per query kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="generator processes (build)")
    parser.add_argument("--rebuild", action="store_true", help="ignore a cached database")
    return parser.parse_args()


if __name__ == "__main__":
    main()

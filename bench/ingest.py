"""Ingest throughput, ack latency and accept-to-searchable time of a real server.

    .venv/bin/python bench/ingest.py [--quick]

Starts `auditlake serve` as a subprocess (temp data folder, free port), creates
a key, then measures in one run:

(a) single events: 64 keep-alive connections each POSTing one event at a time;
(b) batches of 100 events over 16 connections;
(c) accept-to-searchable: probe events (3 probers side by side) sent during
    (a) and (b), timing from the 2xx ack until a search (`actor_id=` filter)
    returns the event; after each phase the run also waits until /readyz
    reports no unindexed events (the recorder's backlog);
(d) a raw SQLite baseline (the library auditlake uses, through APSW): the same
    rows, the product's journal and store schemas (created by `open_database`),
    WAL, one process and thread: journal
    rows (synchronous=FULL) in transactions of 1000 events, and (second figure)
    the search-index rows added to the store (synchronous=NORMAL) every 20,000
    events, as the recorder does.

The load client is a minimal asyncio HTTP/1.1 client over raw sockets (uvloop
when installed); every request's bytes are built before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from auditlake.consumers.process import CONSUMER_NICENESS
from auditlake.core.event import BatchInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.sqlite_db import DbConnection, open_database, query
from common import ROOT, environment, index_rows, journal_rows, percentile, write_results
from workload import Workload

BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
TARGETS = {"batch_events_per_s": 50_000, "single_events_per_s": 5_000, "searchable_p99_ms": 1000}
RAW_TX_EVENTS = 1000
PROBERS = 3  # concurrent accept-to-searchable probes during each phase
RAW_INDEX_EVENTS = 20_000  # the recorder's default batch (index_batch_events)


@dataclass
class Plan:
    """How much load each phase offers, and for how long at most."""

    single_events: int
    single_clients: int
    batch_events: int
    batch_size: int
    batch_clients: int
    phase_seconds: float
    warmup_events: int


FULL = Plan(20_000, 64, 200_000, 100, 16, 60.0, 500)
QUICK = Plan(2_000, 64, 20_000, 100, 16, 15.0, 200)


# --------------------------------------------------------------------------- HTTP client


class Connection:
    """One keep-alive HTTP/1.1 connection; requests are pre-built bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request; the status and the body of its response."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().find(b"\r\ncontent-length:")
        if at < 0:
            if b"\r\ntransfer-encoding: chunked" in head.lower():
                return status, await self._chunked()  # searches stream their pages
            raise RuntimeError(f"response without content-length: {head!r}")
        end = head.index(b"\r\n", at + 2)
        body = await self.reader.readexactly(int(head[at + 17 : end]))
        return status, body

    async def _chunked(self) -> bytes:
        """A chunked body (no trailers: the server sends none)."""
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)  # the data and its CRLF
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])

    def close(self) -> None:
        self.writer.close()


def post(path: str, body: bytes, key: str) -> bytes:
    """The full bytes of a POST request with a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get(path: str, key: str) -> bytes:
    """The full bytes of a GET request."""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    """`auditlake serve` in a subprocess over a temporary data folder."""

    data_dir: Path
    port: int = 0
    key: str = ""
    process: subprocess.Popen[bytes] | None = None
    scopes: tuple[str, ...] = ("ingest", "read")
    settings: dict[str, str] = field(default_factory=dict)  # AUDITLAKE_* variables

    def start(self) -> None:
        self.port = _free_port()
        self.key = subprocess.run(
            [
                BIN / "auditlake",
                "keys",
                "create",
                "--tenant",
                "bench",
                *(arg for scope in self.scopes for arg in ("--scope", scope)),
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        log = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                BIN / "auditlake",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.settings},
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            try:
                conn = await Connection.open(self.port)
                status, _ = await conn.request(get("/readyz", self.key))
                # An authenticated read proves the port is ours, not another test's server.
                mine, _ = await conn.request(get("/v1/events?limit=1", self.key))
                conn.close()
                if status == 200 and mine == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s: {self.log_tail()}")

    def cpu_seconds(self) -> tuple[float, float, float]:
        """User + system CPU used by the server process, by its recorder process,
        and by its consumers' process (the archiver, told apart by its niceness)."""
        assert self.process is not None
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        niceness: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process just ended
                continue
            pid = int(stat.parent.name)
            parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
            niceness[pid] = int(fields[16])
        tree, grown = {self.process.pid}, True
        while grown:  # add children, grandchildren... until nothing new
            found = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= found
            grown = bool(found)
        tick = os.sysconf("SC_CLK_TCK")
        own = ticks.get(self.process.pid, 0)
        archiver = sum(ticks[p] for p in tree if niceness.get(p) == CONSUMER_NICENESS)
        recorder = sum(ticks.get(pid, 0) for pid in tree) - own - archiver
        return own / tick, recorder / tick, archiver / tick

    async def children_settled(self, quiet: float = 1.0, timeout: float = 20.0) -> None:
        """Wait until the child processes have used no CPU for `quiet` seconds
        (or `timeout`): a niced child still starting up after the warm-up
        would charge its start to phase (a)."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()[1:]
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            now = self.cpu_seconds()[1:]
            if now == before:
                return
            before = now

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- payloads


def make_events(count: int, seed: int) -> list[bytes]:
    """`count` encoded event objects of the workload, for tenant `bench`."""
    world = Workload(seed)
    pools = world.tenants[0]  # the largest tenant's actors and targets
    encode = msgspec.json.encode
    return [encode(world.event_json(pools)) for _ in range(count)]


def single_requests(events: list[bytes], key: str) -> list[bytes]:
    return [post("/v1/events", body, key) for body in events]


def batch_requests(events: list[bytes], size: int, key: str) -> list[bytes]:
    return [
        post("/v1/events/batch", b'{"events":[' + b",".join(events[i : i + size]) + b"]}", key)
        for i in range(0, len(events), size)
    ]


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    """What one load phase achieved."""

    events: int = 0
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def run_load(
    port: int, requests: list[bytes], clients: int, per_request: int, budget: float
) -> LoadResult:
    """Send `requests` over `clients` connections, at most `budget` seconds."""
    result = LoadResult()
    conns = [await Connection.open(port) for _ in range(clients)]
    queue = iter(requests)
    started = time.perf_counter()
    deadline = started + budget

    async def client(conn: Connection) -> None:
        for raw in queue:
            sent = time.perf_counter()
            status, _ = await conn.request(raw)
            done = time.perf_counter()
            result.requests += 1
            if 200 <= status < 300:
                result.events += per_request
                result.latencies.append(done - sent)
            else:
                result.errors[status] = result.errors.get(status, 0) + 1
            if done > deadline:
                return

    await asyncio.gather(*(client(conn) for conn in conns))
    result.seconds = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return result


async def probe(
    port: int, events: list[bytes], key: str, stop: asyncio.Event, samples: list[float]
) -> None:
    """Until `stop`: publish one event with a unique actor id, then search for it.

    The time is from the 2xx ack until a search (`actor_id=` filter) returns it.
    GET /v1/events/{id} would not do: it reads the journal, visible at the ack.
    """
    sender, reader = await Connection.open(port), await Connection.open(port)
    rng = random.Random(3)
    for body in events:
        if stop.is_set():
            break
        status, _ = await sender.request(post("/v1/events", body, key))
        acked = time.perf_counter()
        if status != 201:
            continue
        actor = msgspec.json.decode(body)["actor"]["id"]
        search = get(f"/v1/events?actor_id={actor}&limit=1", key)
        while True:
            status, page = await reader.request(search)
            if status == 200 and msgspec.json.decode(page)["data"]:
                break
            if time.perf_counter() - acked > 10:
                break
        samples.append(time.perf_counter() - acked)
        await asyncio.sleep(rng.uniform(0.02, 0.06))  # interleave with the load
    sender.close()
    reader.close()


ARCHIVER_LAG = b'auditlake_consumer_lag_events{consumer="archiver"}'
METRICS = {
    b"auditlake_group_commit_events_count": "commits",
    b"auditlake_group_commit_events_sum": "committed",
    b"auditlake_index_step_seconds_count": "index_steps",
    b"auditlake_index_step_seconds_sum": "index_seconds",
    b"auditlake_indexed_events_total": "indexed",
}


async def metric_sums(port: int, key: str) -> dict[str, float]:
    """Journal and recorder counters from /metrics."""
    conn = await Connection.open(port)
    _, text = await conn.request(get("/metrics", key))
    conn.close()
    sums = dict.fromkeys(METRICS.values(), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(b" ")
        if name in METRICS:
            sums[METRICS[name]] = float(value)
    return sums


async def wait_for(
    port: int, key: str, path: str, done: Callable[[bytes], bool], every: float, timeout: float
) -> float:
    """Seconds until GET `path` answers a body that `done` accepts (or the timeout)."""
    conn = await Connection.open(port)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            _, body = await conn.request(get(path, key))
            if done(body):
                break
            await asyncio.sleep(every)
    finally:
        conn.close()
    return time.perf_counter() - started


async def drain_archive(port: int, key: str, timeout: float = 300.0) -> float:
    """Seconds until /metrics reports that the archiver has caught up."""

    def caught_up(text: bytes) -> bool:
        return ARCHIVER_LAG + b" 0.0" in text or ARCHIVER_LAG not in text

    return await wait_for(port, key, "/metrics", caught_up, 0.05, timeout)


async def drain_index(port: int, key: str, timeout: float = 120.0) -> float:
    """Seconds until /readyz reports no acknowledged-but-unsearchable events."""

    def indexed(body: bytes) -> bool:
        return not msgspec.json.decode(body).get("index_lag_events")

    return await wait_for(port, key, "/readyz", indexed, 0.005, timeout)


# --------------------------------------------------------------------------- phases


@dataclass
class Payloads:
    """Every event body of the run, encoded before any clock starts."""

    warmup: list[bytes]
    single: list[bytes]
    batched: list[bytes]
    probes: list[bytes]

    @classmethod
    def make(cls, plan: Plan, seed: int) -> Payloads:
        sizes = [plan.warmup_events, plan.single_events, plan.batch_events]
        events = make_events(sum(sizes), seed)
        parts, at = [], 0
        for size in sizes:
            parts.append(events[at : at + size])
            at += size
        probes = []
        for number, body in enumerate(make_events(2_000, seed + 1)):
            event = msgspec.json.decode(body)
            event["actor"]["id"] = f"probe{number:06d}"  # unique, so a search finds just it
            probes.append(msgspec.json.encode(event))
        return cls(parts[0], parts[1], parts[2], probes)


async def run_phase(
    server: Server,
    requests: list[bytes],
    clients: int,
    per_request: int,
    plan: Plan,
    probes: list[bytes],
) -> dict[str, Any]:
    """One load phase with probes interleaved, then the wait until all is searchable."""
    before = await metric_sums(server.port, server.key)
    (own, children, archiver), client_cpu = server.cpu_seconds(), time.process_time()
    machine = machine_busy_seconds()
    stop = asyncio.Event()
    samples: list[float] = []
    probers = [  # a few searchers side by side, each with its own probe events
        asyncio.create_task(probe(server.port, probes[i::PROBERS], server.key, stop, samples))
        for i in range(PROBERS)
    ]
    result = await run_load(server.port, requests, clients, per_request, plan.phase_seconds)
    stop.set()
    await asyncio.gather(*probers)
    drain = await drain_index(server.port, server.key)
    # CPU up to the end of the drain, so indexing done after the load counts too.
    own_after, children_after, _ = server.cpu_seconds()
    own, children = own_after - own, children_after - children
    client_cpu = time.process_time() - client_cpu
    machine = machine_busy_seconds() - machine
    # The archiver waits out a burst, then catches up: its CPU counts until then.
    archive_drain = await drain_archive(server.port, server.key)
    archiver = server.cpu_seconds()[2] - archiver
    busy = result.seconds + drain
    after = await metric_sums(server.port, server.key)
    delta = {name: after[name] - before[name] for name in after}
    seconds = result.seconds
    return {
        "clients": clients,
        "events_per_request": per_request,
        "events": result.events,
        "requests": result.requests,
        "errors": {str(k): v for k, v in result.errors.items()},
        "seconds": seconds,
        "events_per_s": result.events / seconds,
        "ack_p50_ms": percentile(result.latencies, 50) * 1000,
        "ack_p99_ms": percentile(result.latencies, 99) * 1000,
        "index_drain_s": drain,
        "indexed_events_per_s": result.events / (seconds + drain),
        # CPU over load + drain, % of one core; the server with its recorder process
        "server_cpu_pct": 100 * (own + children) / busy,
        "recorder_cpu_pct": 100 * children / busy,
        "client_cpu_pct": 100 * client_cpu / busy,
        "other_cpu_pct": 100 * (machine - own - children - client_cpu) / busy,
        "server_cpu_us_per_event": 1e6 * own / result.events,
        "recorder_cpu_us_per_event": 1e6 * children / result.events,
        "archive_drain_s": archive_drain,
        "archiver_cpu_us_per_event": 1e6 * archiver / result.events,
        "events_per_commit": delta["committed"] / max(delta["commits"], 1),
        "commits_per_s": delta["commits"] / seconds,
        "events_per_index_step": delta["indexed"] / max(delta["index_steps"], 1),
        "index_busy_pct": 100 * delta["index_seconds"] / (seconds + drain),
        "searchable_ms": [s * 1000 for s in samples],
    }


async def measure(plan: Plan, payloads: Payloads, data_dir: Path) -> dict[str, Any]:
    """Start the server, run the phases, stop it."""
    server = Server(data_dir)
    server.start()
    try:
        await server.wait_ready()
        key = server.key
        await run_load(server.port, single_requests(payloads.warmup, key), 8, 1, 30)
        await server.children_settled()
        single = single_requests(payloads.single, key)
        batches = batch_requests(payloads.batched, plan.batch_size, key)
        print(f"(a) {len(single):,} single events over {plan.single_clients} connections...")
        a = await run_phase(server, single, plan.single_clients, 1, plan, payloads.probes[:1000])
        print(f"(b) {len(payloads.batched):,} events in batches of {plan.batch_size}...")
        b = await run_phase(
            server, batches, plan.batch_clients, plan.batch_size, plan, payloads.probes[1000:]
        )
    finally:
        server.stop()
    return {"single": a, "batch": b, "server_log_tail": server.log_tail()[-500:]}


# --------------------------------------------------------------------------- raw baseline


def raw_stored(bodies: list[bytes], per_request: int) -> list[StoredEvent]:
    """`bodies` normalized as the server does, request by request."""
    origin = Origin("bench", "key:rawbaseline", "api", datetime.now(UTC))
    stored: list[StoredEvent] = []
    for at in range(0, len(bodies), per_request):
        body = b'{"events":[' + b",".join(bodies[at : at + per_request]) + b"]}"
        stored += normalize(msgspec.json.decode(body, type=BatchInput).events, origin, Limits())
    return stored


def raw_insert(stored: list[StoredEvent], folder: Path, *, index: bool) -> float:
    """Rows/s writing `stored` to fresh databases with plain SQLite calls, one thread.

    Journal rows go to journal.db (synchronous=FULL) in transactions of
    RAW_TX_EVENTS; with `index`, every RAW_INDEX_EVENTS events the search-index
    rows follow in one transaction on store.db (synchronous=NORMAL), as the
    recorder does. All rows are built before the clock starts.
    """
    folder.mkdir()
    journal = open_database(folder / "journal.db", "journal")
    store = open_database(folder / "store.db", "store", synchronous="NORMAL")
    chunks = [
        journal_rows(stored[at : at + RAW_TX_EVENTS], at + 1)
        for at in range(0, len(stored), RAW_TX_EVENTS)
    ]
    indexed = [
        index_rows(stored[at : at + RAW_INDEX_EVENTS], at + 1)
        for at in range(0, len(stored), RAW_INDEX_EVENTS)
    ]
    per_index = RAW_INDEX_EVENTS // RAW_TX_EVENTS
    started = time.perf_counter()
    for number, rows in enumerate(chunks, start=1):
        _transaction(journal, [(query("journal", "insert_event"), rows)])
        if index and (number % per_index == 0 or number == len(chunks)):
            rows_i, targets, texts = indexed[(number - 1) // per_index]
            work = [("insert_index", rows_i), ("insert_target", targets), ("insert_text", texts)]
            _transaction(store, [(query("store", name), rows) for name, rows in work])
    seconds = time.perf_counter() - started
    journal.close()
    store.close()
    return len(stored) / seconds


def _transaction(conn: DbConnection, work: list[tuple[str, list[Any]]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for sql, rows in work:
        conn.executemany(sql, rows)
    conn.execute("COMMIT")


def raw_baseline(payloads: Payloads, figures: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Raw SQLite rows/s for the rows of (a) and of (b): journal only, and with the index."""
    out: dict[str, Any] = {"tx_events": RAW_TX_EVENTS, "index_tx_events": RAW_INDEX_EVENTS}
    single, batch = figures["single"], figures["batch"]
    for phase, bodies, per in (
        ("single", payloads.single[: single["events"]], 1),
        ("batch", payloads.batched[: batch["events"]], batch["events_per_request"]),
    ):
        stored = raw_stored(bodies, per)
        out[f"{phase}_rows"] = len(stored)
        for index in (False, True):
            name = f"{phase}_{'with_index' if index else 'journal'}_rows_per_s"
            out[name] = raw_insert(stored, data_dir / f"raw-{name}", index=index)
    return out


# --------------------------------------------------------------------------- report


def summarize(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the tables and the verdicts; the verdicts as a dict."""
    single, batch = figures["single"], figures["batch"]
    print_phases(single, batch)
    samples = single["searchable_ms"] + batch["searchable_ms"]
    searchable = {
        "samples": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "max_ms": max(samples, default=float("nan")),
    }
    print(
        f"\n(c) accept-to-searchable (ack -> a search returns it): {len(samples)} probes "
        f"({len(single['searchable_ms'])} during (a), {len(batch['searchable_ms'])} during (b)); "
        f"p50 {searchable['p50_ms']:.1f} ms, p99 {searchable['p99_ms']:.1f} ms, "
        f"max {searchable['max_ms']:.1f} ms"
    )
    figures["searchable"] = searchable
    figures["ratios"] = print_raw(single, batch, figures["raw"])
    return verdicts(single, batch, searchable)


def print_phases(single: dict[str, Any], batch: dict[str, Any]) -> None:
    print(
        f"\n{'phase':<27}{'events':>8}{'s':>6}{'ack ev/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'drain s':>8}{'idx ev/s':>9}{'server':>7}{'client':>7}{'other':>6}"
        f"{'ev/commit':>10}{'ev/index':>9}{'errors':>7}"
    )
    for name, f in (("(a) single x64 conns", single), ("(b) batch 100 x16 conns", batch)):
        print(
            f"{name:<27}{f['events']:>8,}{f['seconds']:>6.1f}{f['events_per_s']:>9,.0f}"
            f"{f['ack_p50_ms']:>8.1f}{f['ack_p99_ms']:>8.1f}{f['index_drain_s']:>8.2f}"
            f"{f['indexed_events_per_s']:>9,.0f}{f['server_cpu_pct']:>6.0f}%"
            f"{f['client_cpu_pct']:>6.0f}%{f['other_cpu_pct']:>5.0f}%"
            f"{f['events_per_commit']:>10.1f}{f['events_per_index_step']:>9.0f}"
            f"{sum(f['errors'].values()):>7}"
        )
    print(
        "ack ev/s: acknowledged (durable) events per second while the load ran; drain s: wait\n"
        "after the load until /readyz shows no unindexed events; idx ev/s: events / (load +\n"
        "drain), i.e. searchable throughput. CPU over load + drain, % of one core: server with\n"
        "its recorder process, client, other = rest of the machine."
    )
    for name, f in (("(a)", single), ("(b)", batch)):
        print(
            f"CPU per event {name}: server process {f['server_cpu_us_per_event']:.1f} us, "
            f"recorder process {f['recorder_cpu_us_per_event']:.1f} us "
            f"({f['recorder_cpu_pct']:.0f}% of a core); archiver process "
            f"{f['archiver_cpu_us_per_event']:.1f} us, done {f['archive_drain_s']:.1f} s "
            "after the index"
        )


def print_raw(single: dict[str, Any], batch: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The raw SQLite figures and the auditlake/raw ratios."""
    print(
        f"\n(d) raw SQLite, same rows, the journal and store schemas (all their indexes), WAL,\n"
        f"    one thread: journal rows (synchronous=FULL) in transactions of {raw['tx_events']};\n"
        f"    'with index' adds the store's index rows (synchronous=NORMAL) every\n"
        f"    {raw['index_tx_events']:,} events in one transaction, as the recorder does."
    )
    ratios: dict[str, Any] = {}
    for label, phase, f in (("(a)", "single", single), ("(b)", "batch", batch)):
        journal = raw[f"{phase}_journal_rows_per_s"]
        indexed = raw[f"{phase}_with_index_rows_per_s"]
        ratios[phase] = {
            "ack_vs_raw_journal": f["events_per_s"] / journal,
            "indexed_vs_raw_with_index": f["indexed_events_per_s"] / indexed,
        }
        print(
            f"    rows of {label}: {journal:>9,.0f} rows/s journal only, {indexed:>9,.0f} rows/s "
            f"with index; auditlake/raw = {ratios[phase]['ack_vs_raw_journal']:.3f} (ack vs "
            f"journal), {ratios[phase]['indexed_vs_raw_with_index']:.3f} (searchable vs with index)"
        )
    return ratios


def verdicts(
    single: dict[str, Any], batch: dict[str, Any], searchable: dict[str, Any]
) -> dict[str, Any]:
    checks = [
        ("batches", batch["events_per_s"], ">=", TARGETS["batch_events_per_s"], "events/s"),
        ("single events", single["events_per_s"], ">=", TARGETS["single_events_per_s"], "events/s"),
        ("accept-to-searchable p99", searchable["p99_ms"], "<", TARGETS["searchable_p99_ms"], "ms"),
    ]
    out: dict[str, str] = {}
    print()
    for name, value, op, target, unit in checks:
        ok = value >= target if op == ">=" else value < target
        out[name] = "n/a" if math.isnan(value) else "PASS" if ok else "MISS"
        print(f"{out[name]}: {name} {value:,.1f} {unit} (target {op} {target:,} {unit})")
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke-test run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the temp data folder")
    parser.add_argument(
        "--no-probes", action="store_true", help="skip (c): measure throughput without searches"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    print(f"encoding {plan.single_events + plan.batch_events:,} events...")
    payloads = Payloads.make(plan, args.seed)
    if args.no_probes:
        payloads.probes = []
    data_dir = Path(tempfile.mkdtemp(prefix="auditlake-bench-"))
    try:
        figures = asyncio.run(measure(plan, payloads, data_dir))
        print("(d) raw SQLite baseline...")
        figures["raw"] = raw_baseline(payloads, figures, data_dir)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    figures["verdicts"] = summarize(figures)
    figures = {
        "benchmark": "ingest",
        **environment(),
        "mode": "quick" if args.quick else "full",
        "plan": plan.__dict__,
        **figures,
    }
    print(f"\nmachine speed: {figures['python_loop_ms']:.0f} ms for bench/common.py's Python loop")
    dest = write_results("ingest-quick" if args.quick else "ingest", figures)
    print(f"\nfigures written to {dest}")
    brief = {k: v for k, v in figures.items() if k != "server_log_tail"}
    for phase in ("single", "batch"):  # the per-probe samples stay in the file
        brief[phase] = {k: v for k, v in brief[phase].items() if k != "searchable_ms"}
    print(json.dumps(brief, default=str))


if __name__ == "__main__":
    main()

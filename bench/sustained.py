"""Sustained ingest with the lake on: does the archiver keep up?

    .venv/bin/python bench/sustained.py [--rates R [R ...]] [--seconds S]

For each rate R, in one run: a fresh `auditlake serve` (lake on, the default
batches of 10,000 events or 60 s), then batches of 100 workload events of 50
tenants (each event's time is its receipt): R x S events offered on a fixed
schedule of R events/s over 8 connections (when the server acknowledges
fewer, the load takes longer than S). Every 2 s the archiver's lag
(events and seconds behind the journal) is read from /metrics. After the
load, the run waits (at most 5 minutes) until the archiver has caught up.
With `--lake-off-too`, each rate runs a second time on a server without the
lake, for the ratio of the two in the same run.

Per rate it prints the acknowledged rate, the archiver's worst lag in the
second half of the load and its lag at the end, the catch-up time, and the
CPU per event of the server, the recorder and the archiver processes. The
archiver kept up when its lag from S/2 on never exceeded the batch age
(60 s) plus 15 s: a backlog that does not grow.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from common import environment, percentile, write_results
from ingest import ARCHIVER_LAG, Connection, Server, drain_archive, get, post
from workload import Workload

BATCH = 100
CONNECTIONS = 8
SAMPLE_EVERY = 2.0
KEPT_UP_SECONDS = 60.0 + 15.0  # the default batch age, and time to write it
LAG_SECONDS = b'auditlake_consumer_lag_seconds{consumer="archiver"}'
DISTINCT_REQUESTS = 500  # cycled: ids are given by the server, so repeats are new events


def batch_bodies(seed: int) -> list[bytes]:
    """Request bodies of `BATCH` workload events each, spread over its tenants."""
    workload = Workload(seed)
    bodies = []
    for _ in range(DISTINCT_REQUESTS):
        events = []
        for _ in range(BATCH):
            pools = workload.tenant()
            event = workload.event_json(pools)
            event["tenant"] = pools.name  # the key may write to any tenant (admin)
            events.append(event)
        bodies.append(msgspec.json.encode({"events": events}))
    return bodies


async def paced_load(
    server: Server, bodies: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Send `rate` x `seconds` events in batches, no faster than `rate` events/s."""
    requests = [post("/v1/events/batch", body, server.key) for body in bodies]
    interval = BATCH / rate
    numbers = itertools.count()
    started = time.perf_counter()
    acked, errors, latencies = 0, 0, []

    async def client(conn: Connection) -> None:
        nonlocal acked, errors
        for number in numbers:
            due = started + number * interval
            if due - started >= seconds:
                return
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sent = time.perf_counter()
            status, _ = await conn.request(requests[number % len(requests)])
            latencies.append(time.perf_counter() - sent)
            if 200 <= status < 300:
                acked += BATCH
            else:
                errors += 1

    conns = [await Connection.open(server.port) for _ in range(CONNECTIONS)]
    await asyncio.gather(*(client(conn) for conn in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return {
        "acked_events": acked,
        "acked_per_s": acked / elapsed,
        "load_seconds": elapsed,
        "errors": errors,
        "ack_p99_ms": percentile(latencies, 99) * 1000,
    }


async def sample_lag(server: Server, samples: list[tuple[float, float, float]]) -> None:
    """Append (time, lag events, lag seconds) every `SAMPLE_EVERY` s until cancelled."""
    conn = await Connection.open(server.port)
    started = time.perf_counter()
    try:
        while True:
            _, text = await conn.request(get("/metrics", server.key))
            events = lag = 0.0
            for line in text.splitlines():
                name, _, value = line.partition(b" ")
                if name == ARCHIVER_LAG:
                    events = float(value)
                elif name == LAG_SECONDS:
                    lag = float(value)
            samples.append((time.perf_counter() - started, events, lag))
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        conn.close()


async def one_rate(rate: float, seconds: float, bodies: list[bytes], lake: bool) -> dict[str, Any]:
    """A fresh server, the paced load at `rate`, and the archiver's lag throughout."""
    data_dir = Path(tempfile.mkdtemp(prefix="auditlake-bench-sustained-"))
    settings = {} if lake else {"AUDITLAKE_LAKE__ENABLED": "false"}
    server = Server(data_dir, scopes=("ingest", "read", "admin"), settings=settings)
    server.start()
    try:
        await server.wait_ready()
        cpu_before = server.cpu_seconds()
        samples: list[tuple[float, float, float]] = []
        sampler = asyncio.create_task(sample_lag(server, samples))
        load = await paced_load(server, bodies, rate, seconds)
        sampler.cancel()
        cpu_load = server.cpu_seconds()
        catch_up = await drain_archive(server.port, server.key)
        cpu_after = server.cpu_seconds()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    second_half = [s for s in samples if s[0] >= seconds / 2] or samples
    events = max(load["acked_events"], 1)
    own, recorder = (cpu_load[i] - cpu_before[i] for i in (0, 1))
    return {
        "rate": rate,
        "lake": lake,
        **load,
        "worst_lag_events": max(s[1] for s in second_half),
        "worst_lag_s": max(s[2] for s in second_half),
        "end_lag_events": samples[-1][1] if samples else float("nan"),
        "end_lag_s": samples[-1][2] if samples else float("nan"),
        "catch_up_s": catch_up,
        "server_cpu_us_per_event": 1e6 * own / events,
        "recorder_cpu_us_per_event": 1e6 * recorder / events,
        "archiver_cpu_us_per_event": 1e6 * (cpu_after[2] - cpu_before[2]) / events,
        "kept_up": max(s[2] for s in second_half) <= KEPT_UP_SECONDS,
        "lag_samples": samples,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['rate']:>8,.0f}{'on' if result['lake'] else 'off':>5}"
        f"{result['acked_per_s']:>9,.0f}{result['errors']:>7}"
        f"{result['ack_p99_ms']:>8.0f}{result['worst_lag_events']:>11,.0f}"
        f"{result['worst_lag_s']:>8.1f}{result['end_lag_s']:>8.1f}{result['catch_up_s']:>9.1f}"
        f"{result['server_cpu_us_per_event']:>8.1f}{result['recorder_cpu_us_per_event']:>8.1f}"
        f"{result['archiver_cpu_us_per_event']:>8.1f}  {kept_up(result)}"
    )


def kept_up(result: dict[str, Any]) -> str:
    if not result["lake"]:
        return "-"
    return "yes" if result["kept_up"] else "NO"


def print_ratios(results: list[dict[str, Any]]) -> None:
    """Lake on against lake off at each rate that ran both."""
    for on, off in itertools.pairwise(results):
        if on["rate"] == off["rate"] and on["lake"] and not off["lake"]:
            print(
                f"at {on['rate']:,.0f} offered: acknowledged with the lake / without "
                f"{on['acked_per_s'] / off['acked_per_s']:.2f}; ack p99 "
                f"{on['ack_p99_ms']:.0f} / {off['ack_p99_ms']:.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[4_000, 8_000, 12_000])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--lake-off-too", action="store_true", help="each rate without a lake too")
    args = parser.parse_args()
    bodies = batch_bodies(args.seed)
    print(
        f"{'offered':>8}{'lake':>5}{'acked/s':>9}{'errors':>7}{'p99 ms':>8}{'lag ev':>11}"
        f"{'lag s':>8}{'end s':>8}{'catch s':>9}{'server':>8}{'record':>8}{'archive':>8}  kept up"
    )
    results = []
    for rate in args.rates:
        for lake in (True, False) if args.lake_off_too else (True,):
            results.append(asyncio.run(one_rate(rate, args.seconds, bodies, lake)))
            report(results[-1])
    print_ratios(results)
    print(
        "lag ev / lag s: the archiver's worst lag in the second half of the load; end s: its\n"
        "lag when the load stopped; catch s: until it had everything; CPU per acknowledged\n"
        "event in us (server and recorder during the load, archiver until caught up)."
    )
    figures = {"benchmark": "sustained", **environment(), **vars(args), "results": results}
    print(f"machine speed: {figures['python_loop_ms']:.0f} ms for bench/common.py's Python loop")
    print(f"figures written to {write_results('sustained', figures)}")


if __name__ == "__main__":
    main()

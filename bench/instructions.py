"""Instructions a real `auditlake serve` executes per request, counted by callgrind.

    .venv/bin/python bench/instructions.py [--requests N]

Timings on this kind of host drift by 2-3x within an hour, so a change of 10%
hides in the noise of `bench/ingest.py`. A count of executed instructions does
not drift: it compares two commits run at different times, to about 1-2% (what
a run leaves to timing: how requests fall into group commits, the idle loop).

Starts the server under valgrind's callgrind (counting off; the recorder and
archiver children run outside valgrind and are not counted), warms it up,
then counts during each phase:

(a) N single-event requests over 64 connections;
(b) N / 10 batches of 100 events over 16 connections;

and prints instructions per request and per event for the whole server
process and for its main thread (the event loop: parsing, normalization,
routing), the rest being the journal's writer and the worker threads. The
server runs about 50x slower under valgrind, so N stays small. Needs valgrind
(Debian's package `valgrind`, which has `callgrind_control`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import environment, write_results
from ingest import BIN, Server, _free_port, batch_requests, make_events, run_load, single_requests

WARMUP_REQUESTS = 300
BATCH_SIZE = 100


def start_counted(data_dir: Path, out: Path) -> Server:
    """`auditlake serve` under callgrind, counting off, with a key of its own.

    Started here, not by `Server.start`, so that this file also runs in the
    tree of an older commit (see Commands in docs/benchmarks.md), whose
    `bench/ingest.py` knows nothing of valgrind."""
    server = Server(data_dir, port=_free_port())
    folder = ["--data-dir", str(data_dir)]
    scopes = ["--scope", "ingest", "--scope", "read"]
    server.key = subprocess.run(
        [str(BIN / "auditlake"), "keys", "create", "--tenant", "bench", *scopes, *folder],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes"]
    serve = [str(BIN / "python"), str(BIN / "auditlake"), "serve", *folder]
    server.process = subprocess.Popen(
        [*valgrind, f"--callgrind-out-file={out}", *serve, "--port", str(server.port)],
        stdout=(data_dir / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return server


def callgrind_control(pid: int, *args: str) -> None:
    """Tell the callgrind of process `pid` to do something (`-i on`, `-d`...)."""
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


async def count_phase(
    server: Server, out: Path, dump_number: int, requests: list[bytes], clients: int
) -> tuple[int, int]:
    """Send every request with counting on; (all threads, main thread)
    instructions of the phase. Raises RuntimeError if a request failed or
    the load stopped early: the figures would be per request sent."""
    assert server.process is not None
    pid = server.process.pid
    callgrind_control(pid, "-i", "on")
    load = await run_load(server.port, requests, clients, per_request=1, budget=3600)
    callgrind_control(pid, "-i", "off")
    callgrind_control(pid, "-d")
    if load.errors or load.requests != len(requests):
        raise RuntimeError(f"{load.requests} of {len(requests)} sent, errors {load.errors}")
    return await totals(out, dump_number)


async def totals(out: Path, dump_number: int, timeout: float = 60.0) -> tuple[int, int]:
    """(all threads, main thread) instructions of dump `dump_number`, once
    the server has written its files (one per thread)."""
    deadline = time.monotonic() + timeout
    while not any(out.parent.glob(f"{out.name}.{dump_number}-*")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump {dump_number} in {timeout} s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the other threads' files follow the first
    counts = {}
    for path in out.parent.glob(f"{out.name}.{dump_number}-*"):
        lines = path.read_text().splitlines()
        counts[path.name] = sum(int(ln.split()[1]) for ln in lines if ln.startswith("totals:"))
    main = sum(n for name, n in counts.items() if name.endswith("-01"))
    return sum(counts.values()), main


async def measure(requests: int, data_dir: Path) -> dict[str, Any]:
    """Warm the counted server up, then count phases (a) and (b)."""
    out = data_dir / "callgrind.out"
    server = start_counted(data_dir, out)
    try:
        await server.wait_ready(timeout=600)
        batched = requests // 10 * BATCH_SIZE
        events = make_events(WARMUP_REQUESTS + requests + batched, seed=11)
        warmup, events = events[:WARMUP_REQUESTS], events[WARMUP_REQUESTS:]
        await run_load(server.port, single_requests(warmup, server.key), 8, 1, budget=600)
        phases = [
            ("single", single_requests(events[:requests], server.key), 64, 1),
            ("batch", batch_requests(events[requests:], BATCH_SIZE, server.key), 16, BATCH_SIZE),
        ]
        figures: dict[str, Any] = {}
        for number, (name, sent, clients, per_request) in enumerate(phases, start=1):
            print(f"({name}) {len(sent):,} requests under callgrind...", flush=True)
            every, main = await count_phase(server, out, number, sent, clients)
            figures[name] = {
                "requests": len(sent),
                "instructions_per_request": every / len(sent),
                "main_thread_per_request": main / len(sent),
                "instructions_per_event": every / (len(sent) * per_request),
            }
    finally:
        server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="single-event requests")
    args = parser.parse_args()
    if shutil.which("callgrind_control") is None:
        raise SystemExit("bench/instructions.py needs valgrind (callgrind_control) on PATH")
    data_dir = Path(tempfile.mkdtemp(prefix="auditlake-instructions-"))
    try:
        figures = asyncio.run(measure(args.requests, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    for name, phase in figures.items():
        print(
            f"{name:6} {phase['requests']:6,} requests: "
            f"{phase['instructions_per_request']:12,.0f} instructions/request "
            f"(main thread {phase['main_thread_per_request']:,.0f}), "
            f"{phase['instructions_per_event']:10,.0f} per event"
        )
    result = {"benchmark": "instructions", **environment(), **figures}
    print(f"figures written to {write_results('instructions', result)}")


if __name__ == "__main__":
    main()

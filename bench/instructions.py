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
    """`auditlake serve` under callgrind, counting off, with a key of its own."""
    server = Server(data_dir, port=_free_port())
    folder = ["--data-dir", str(data_dir)]
    scopes = ["--scope", "ingest", "--scope", "read"]
    server.key = subprocess.run(
        [BIN / "auditlake", "keys", "create", "--tenant", "bench", *scopes, *folder],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes"]
    serve = [BIN / "python", BIN / "auditlake", "serve", *folder, "--port", str(server.port)]
    server.process = subprocess.Popen(
        [*valgrind, f"--callgrind-out-file={out}", *serve, "--log-level", "warning"],
        stdout=(data_dir / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return server


def counting(pid: int, on: bool) -> None:
    """Switch callgrind's counting on or off in the server process."""
    command = ["callgrind_control", "-i", "on" if on else "off", str(pid)]
    subprocess.run(command, check=True, capture_output=True)


def dump(pid: int) -> None:
    """Write what was counted since the last dump (one file per thread)."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)


def totals(out: Path, dump_number: int) -> tuple[int, int]:
    """(all threads, main thread) instructions of dump `dump_number`."""
    every, main = 0, 0
    for path in out.parent.glob(f"{out.name}.{dump_number}-*"):
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                count = int(line.split()[1])
                every += count
                main += count if path.name.endswith("-01") else 0
    return every, main


async def count_phase(server: Server, requests: list[bytes], clients: int) -> None:
    assert server.process is not None
    counting(server.process.pid, on=True)
    await run_load(server.port, requests, clients, 1, budget=3600)
    counting(server.process.pid, on=False)
    dump(server.process.pid)


async def measure(requests: int, data_dir: Path) -> dict[str, Any]:
    out = data_dir / "callgrind.out"
    server = start_counted(data_dir, out)
    try:
        await server.wait_ready(timeout=600)
        batched = requests // 10 * BATCH_SIZE
        events = make_events(WARMUP_REQUESTS + requests + batched, seed=11)
        warmup, events = events[:WARMUP_REQUESTS], events[WARMUP_REQUESTS:]
        await run_load(server.port, single_requests(warmup, server.key), 8, 1, 600)
        single = single_requests(events[:requests], server.key)
        batches = batch_requests(events[requests:], BATCH_SIZE, server.key)
        print(f"(a) {len(single)} single-event requests under callgrind...", flush=True)
        await count_phase(server, single, 64)
        print(f"(b) {len(batches)} batches of {BATCH_SIZE} under callgrind...", flush=True)
        await count_phase(server, batches, 16)
        time.sleep(1)  # the dump files are written by the server process
    finally:
        server.stop()
    figures: dict[str, Any] = {}
    for number, (name, sent, per_request) in enumerate(
        [("single", len(single), 1), ("batch", len(batches), BATCH_SIZE)], start=1
    ):
        every, main = totals(out, number)
        figures[name] = {
            "requests": sent,
            "instructions_per_request": every / sent,
            "main_thread_per_request": main / sent,
            "instructions_per_event": every / (sent * per_request),
        }
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

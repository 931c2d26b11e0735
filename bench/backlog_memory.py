"""Memory while catching up a backlog: the peak RSS of every process of
`auditlake serve` while the recorder and the archiver work through a journal
that already holds N events (a restart after an outage, or a backfill that
outran them).

    .venv/bin/python bench/backlog_memory.py [--events N] [--hours H] [--server EXE]

N workload events (50 tenants of Zipf-like size, in time order over H hours)
are written into a fresh journal with the product's own row builder; the
server then starts on that data folder with the lake on, and the bench polls
/metrics until the index and the archiver have caught up. Each process's
peak RSS is its kernel high-water mark (`VmHWM` in /proc/<pid>/status), read
just before the server is stopped; a child restarted meanwhile would show as
another pid (and is reported). Also printed: the catch-up times and a
host-speed probe. `--server` runs another checkout's `auditlake` (its
.venv/bin/auditlake) on the same backlog, for an A/B comparison.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.sqlite_db import open_database, query
from common import ROOT, environment, journal_rows, write_results
from workload import Workload

CHUNK = 10_000
START = datetime(2026, 8, 1, tzinfo=UTC)
LIMIT_MIB = 250.0  # issue 12's bound per process
DEADLINE_SECONDS = 600.0
NICENESS = {5: "recorder", 19: "consumers (archiver)"}  # how the children are told apart


def write_backlog(journal_path: Path, events: int, hours: float, seed: int) -> None:
    """`events` workload events in the journal, in time order."""
    work = Workload(seed=seed)
    conn = open_database(journal_path, "journal", synchronous="OFF")
    step = timedelta(hours=hours) / events
    written = 0
    while written < events:
        count = min(CHUNK, events - written)
        by_tenant: dict[str, list[Any]] = {}
        for n in range(written, written + count):
            pools = work.tenant()
            by_tenant.setdefault(pools.name, []).append(work.event(pools, START + step * n))
        stored = []
        for tenant, inputs in by_tenant.items():
            origin = Origin(tenant, "key:bench", "api", START + step * (written + count))
            stored += normalize(inputs, origin, Limits())
        stored.sort(key=lambda s: s.occurred_us)
        conn.execute("BEGIN")
        conn.executemany(query("journal", "insert_event"), journal_rows(stored, written + 1))
        conn.execute("COMMIT")
        written += count
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(text: str, name: str, labels: str = "") -> float | None:
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return None if found is None else float(found.group(1))


def family(pid: int) -> dict[int, str]:
    """The server and its children, by pid, with a name for each."""
    found = {pid: "server"}
    # The supervisors' threads start the children: look under every task.
    children = [c for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]  # fmt: skip
    for child in map(int, children):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
        nice = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[16])
        kind = "resource tracker" if "resource_tracker" in cmdline else NICENESS.get(nice, "child")
        found[child] = kind
    return found


def peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else 0.0


def catch_up(folder: Path, events: int, executable: str) -> dict[str, Any]:
    """Start the server on `folder`, wait until it has caught up, read the
    peaks, stop it."""
    port = free_port()
    config = folder / "auditlake.toml"
    config.write_text(
        f'data_dir = "{folder / "data"}"\nhost = "127.0.0.1"\nport = {port}\n'
        "[lake]\nenabled = true\n"
    )
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [executable, "serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    times: dict[str, float] = {}
    pids: dict[int, str] = {}
    try:
        while len(times) < 2:
            if time.monotonic() - started > DEADLINE_SECONDS or server.poll() is not None:
                tail = (folder / "server.log").read_text()[-2000:]
                raise SystemExit(f"no catch-up after {DEADLINE_SECONDS} s: {times}\n{tail}")
            time.sleep(0.5)
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            except OSError:
                continue
            pids.update(family(server.pid))
            page = text.decode()
            index = metric(page, "auditlake_index_lag_events")
            archived = metric(page, "auditlake_consumer_lag_events", '{consumer="archiver"}')
            indexed_at = metric(page, "auditlake_indexed_events_total")
            if "indexed" not in times and index == 0 and (indexed_at or 0) >= events:
                times["indexed"] = time.monotonic() - started
            if "archived" not in times and archived == 0:
                times["archived"] = time.monotonic() - started
        peaks = {f"{name} ({pid})": peak_mib(pid) for pid, name in family(server.pid).items()}
        gone = sorted(set(pids) - set(family(server.pid)))
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()
    return {"seconds": times, "peak_rss_mib": peaks, "restarted_children": gone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--server", default=str(ROOT / ".venv/bin/auditlake"))
    args = parser.parse_args()
    env = environment()
    folder = Path(tempfile.mkdtemp(prefix="auditlake-backlog-"))
    try:
        (folder / "data").mkdir()
        began = time.monotonic()
        write_backlog(folder / "data" / "journal.db", args.events, args.hours, args.seed)
        print(f"backlog of {args.events:,} events written in {time.monotonic() - began:.1f} s")
        result = catch_up(folder, args.events, args.server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"host probe: python loop {env['python_loop_ms']:.1f} ms")
    for what, seconds in result["seconds"].items():
        print(f"{what:>9} after {seconds:6.1f} s ({args.events / seconds:,.0f} events/s)")
    worst = 0.0
    for name, mib in result["peak_rss_mib"].items():
        worst = max(worst, mib)
        print(f"  peak RSS {mib:7.1f} MiB  {name}")
    if result["restarted_children"]:
        print(f"  children that died meanwhile: {result['restarted_children']}")
    verdict = "within" if worst <= LIMIT_MIB else "OVER"
    print(f"largest process: {worst:.1f} MiB, {verdict} the {LIMIT_MIB:.0f} MiB bound")
    write_results("backlog_memory", {**vars(args), **result, "environment": env})
    sys.exit(0 if worst <= LIMIT_MIB else 1)


if __name__ == "__main__":
    main()

"""The archiver's CPU per event, with the same batches in every run, for an
A/B comparison of checkouts.

    .venv/bin/python bench/archiver_cpu.py [--rounds R] [--round-events E]
        [--per-request K] [--runs N] [--server EXE ...]

bench/ingest.py reports the archiver's CPU per event too, but there its
batches fall where the 10,000-event threshold happens to be crossed during
the load, or 60 s later by age, so two runs archive in different batches
and under different contention. Here each run starts `auditlake serve` with
`[lake] batch_events = 1000000, batch_seconds = 1` on a fresh data folder
and sends R rounds of E workload events (requests of K over one
connection, about 0.4 s for 2,000), waiting after each round until /metrics
reports that the archiver has caught up: every round is one batch, archived
about a second after its first event, while nothing else runs. One more
round first warms the server up and is not counted. The figure
is the CPU (user + system) of the server's niceness-19 child, the consumers
process, from the first request to the last catch-up (its polls between
rounds included), per event. With several `--server` executables (each
checkout's .venv/bin/auditlake) the runs alternate between them; a
host-speed probe is printed beside the figures. The port is picked here
(older checkouts have no `--port 0`).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, environment, write_results
from ingest import make_events

CONSUMER_NICENESS = 19  # how the consumers' process is told apart
TICKS = os.sysconf("SC_CLK_TCK")
ARCHIVER_LAG = b'auditlake_consumer_lag_events{consumer="archiver"}'
DEADLINE_SECONDS = 120.0


def consumers_cpu(server: int) -> float:
    """CPU seconds of the server's descendants at the consumers' niceness."""
    parents, ticks = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        if int(fields[16]) == CONSUMER_NICENESS:
            ticks[pid] = int(fields[11]) + int(fields[12])
    family, grown = {server}, True
    while grown:
        found = {pid for pid, parent in parents.items() if parent in family} - family
        grown, family = bool(found), family | found
    return sum(ticks.get(pid, 0) for pid in family) / TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, path: str, key: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        body,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def archiver_lag(port: int, key: str) -> float | None:
    for line in call(port, "/metrics", key).splitlines():
        if line.startswith(ARCHIVER_LAG):
            return float(line.split()[-1])
    return None


def one_run(executable: str, rounds: list[list[bytes]], per_request: int) -> float:
    """CPU microseconds per event of the consumers' process over one run."""
    with tempfile.TemporaryDirectory(prefix="auditlake-archiver-cpu-") as folder:
        data = Path(folder) / "data"
        key = subprocess.run(
            [executable, "keys", "create", "--tenant", "bench", "--scope", "ingest",
             "--scope", "read", "--data-dir", str(data)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        port = free_port()
        config = Path(folder) / "auditlake.toml"
        config.write_text(
            f'data_dir = "{data}"\nhost = "127.0.0.1"\nport = {port}\nlog_level = "warning"\n'
            "[lake]\nbatch_events = 1000000\nbatch_seconds = 1\n"
        )
        server = subprocess.Popen([executable, "serve", "--config", str(config)])
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while archiver_lag_or_none(port, key) is None:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            # The first round warms up (the children's start, lazy imports,
            # the lake's first files): not counted.
            send_round(port, key, rounds[0], per_request)
            before = consumers_cpu(server.pid)
            for events in rounds[1:]:
                send_round(port, key, events, per_request)
            return 1e6 * (consumers_cpu(server.pid) - before) / sum(map(len, rounds[1:]))
        finally:
            server.terminate()
            server.wait(timeout=120)


def send_round(port: int, key: str, events: list[bytes], per_request: int) -> None:
    """POST `events` in requests of `per_request`, then wait until archived."""
    for at in range(0, len(events), per_request):
        call(port, "/v1/events/batch", key,
             b'{"events":[' + b",".join(events[at : at + per_request]) + b"]}")  # fmt: skip
    deadline = time.monotonic() + DEADLINE_SECONDS
    while archiver_lag(port, key) != 0:
        if time.monotonic() > deadline:
            raise SystemExit("the archiver did not catch up")
        time.sleep(0.05)


def archiver_lag_or_none(port: int, key: str) -> float | None:
    try:
        return archiver_lag(port, key)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--round-events", type=int, default=2_000)
    parser.add_argument("--per-request", type=int, default=25)
    parser.add_argument("--runs", type=int, default=5, help="per server")
    parser.add_argument("--server", action="append", help="an auditlake executable")
    args = parser.parse_args()
    servers = args.server or [str(ROOT / ".venv/bin/auditlake")]
    env = environment()
    events = make_events((args.rounds + 1) * args.round_events, seed=7)  # + a warm-up round
    size = args.round_events
    rounds = [events[at : at + size] for at in range(0, len(events), size)]
    figures: dict[str, list[float]] = {server: [] for server in servers}
    for run in range(args.runs):
        for server in servers:
            figures[server].append(one_run(server, rounds, args.per_request))
            print(f"run {run + 1}: {figures[server][-1]:5.1f} us/event  {server}")
    print(f"host probe: python loop {env['python_loop_ms']:.1f} ms")
    for server, values in figures.items():
        print(f"median {statistics.median(values):5.1f} us/event "
              f"(runs {min(values):.1f} - {max(values):.1f})  {server}")  # fmt: skip
    write_results("archiver_cpu", {**vars(args), "us_per_event": figures, "environment": env})


if __name__ == "__main__":
    main()

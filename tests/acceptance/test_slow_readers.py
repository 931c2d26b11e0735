"""Readers that ask for a large answer and then stop reading hold a bounded
amount of the server's memory, and it is returned once they leave.

The real `auditlake serve` runs as a subprocess; its resident memory is read
from /proc. Ten raw sockets (five searches of 1,000 events, five exports,
over 14 MB of 60 KB events) send their request and never read.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from .helpers import Server, create_key

EVENT_BYTES = 60_000
EVENTS = 240
READERS = 5
HELD_MB = 80  # what all stalled readers together may add (measured: ~40 MB)
LEFT_MB = 45  # what may stay once they are gone (measured: 12-26 MB)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def stalled_reader(url: str, path: str, key: str) -> socket.socket:
    """A connection that sends its request and then reads nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    return sock


def test_stalled_readers_hold_bounded_memory_and_release_it(server: Server, data_dir: Path) -> None:
    keys = [create_key(data_dir, "acme", "ingest", "read") for _ in range(READERS)]
    server.start()
    assert server.process is not None
    pid = server.process.pid
    headers = {"authorization": f"Bearer {keys[0]}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for start in range(0, EVENTS, 15):
            batch = [
                {"id": f"e{n:04d}", "action": "big.event", "metadata": {"blob": "x" * EVENT_BYTES}}
                for n in range(start, start + 15)
            ]
            client.post("/v1/events/batch", json={"events": batch}).raise_for_status()
        assert len(client.get("/v1/events", params={"limit": "5"}).json()["data"]) == 5
        time.sleep(1.5)
        baseline = rss_mb(pid)
        readers = [stalled_reader(server.url, "/v1/events?limit=1000", key) for key in keys]
        readers += [stalled_reader(server.url, "/v1/export", key) for key in keys]
        peak, deadline = baseline, time.monotonic() + 4
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid))
            time.sleep(0.1)
        started = time.perf_counter()
        client.post("/v1/events", json={"action": "a.b"}).raise_for_status()
        assert time.perf_counter() - started < 1.0  # the server still answers others
        for reader in readers:
            reader.close()
        left, deadline = rss_mb(pid), time.monotonic() + 15
        while left - baseline > LEFT_MB and time.monotonic() < deadline:
            time.sleep(0.2)
            left = rss_mb(pid)
    print(f"RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {left:.0f} MB")
    assert peak - baseline < HELD_MB, (baseline, peak)
    assert left - baseline < LEFT_MB, (baseline, left)

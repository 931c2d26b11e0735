"""One careless or hostile client cannot stall the others or get a 500.

The server is real (uvicorn on 127.0.0.1); its searches are made slow
deterministically by a store double that sleeps, and the hostile client runs
in a subprocess so its own CPU does not count against the server's.
"""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from tests.store_doubles import StoreWrapper

from auditlake.app import build_services
from auditlake.config import Settings
from auditlake.core.query import Query
from auditlake.runtime import Services
from auditlake.store.base import EventStore, Page

SEARCH_SECONDS = 0.5
HOSTILE_CLIENTS = 48
LOAD_SECONDS = 60.0  # at most: the test stops the load once it has measured


class SlowStore(StoreWrapper):
    """Sleeps before each search and counts how many run at once."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.running = 0
        self.most_running = 0
        self.gate = threading.Event()  # searches wait while it is clear
        self.gate.set()
        self._lock = threading.Lock()

    def search(self, query: Query) -> Page:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(SEARCH_SECONDS)
            self.gate.wait(30)
            return self.inner.search(query)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No key cache: every publish checks its key in the database, the case
    # that used to wait behind searches for a thread.
    return Settings(data_dir=str(tmp_path / "data"), port=0, key_cache_seconds=0.0)


@pytest.fixture
def services(settings: Settings) -> Services:
    built = build_services(settings)
    built.store = SlowStore(built.store)
    return built


HOSTILE = textwrap.dedent(
    """
    import sys, threading, time, httpx
    url, key, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    counts = {}
    lock = threading.Lock()
    stop = threading.Event()  # set when the test closes our stdin
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    def hammer(n):
        deadline = time.monotonic() + seconds
        with httpx.Client(headers={"authorization": "Bearer " + key}, timeout=60) as client:
            while time.monotonic() < deadline and not stop.is_set():
                if n % 4 == 0:
                    answer = client.get(url + "/v1/export")
                else:
                    answer = client.get(url + "/v1/events", params={"limit": "1000"})
                label = str(answer.status_code)
                if answer.status_code == 429:
                    assert answer.json()["error"]["code"] == "too_many_requests"
                    assert answer.headers["retry-after"] == "1"
                    label += "-checked"
                    time.sleep(float(answer.headers["retry-after"]))
                with lock:
                    counts[label] = counts.get(label, 0) + 1
    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(sorted(counts.items()))
    """
)


@pytest.fixture
def hostile(live_server: LiveServer) -> Iterator[subprocess.Popen[str]]:
    reader = live_server.key("acme", "read")
    process = subprocess.Popen(
        [sys.executable, "-c", HOSTILE, live_server.url, reader, str(HOSTILE_CLIENTS),
         str(LOAD_SECONDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_slow_searches_of_one_key_do_not_stall_publish_or_readiness(
    live_server: LiveServer, services: Services, hostile: subprocess.Popen[str]
) -> None:
    writer = {"authorization": f"Bearer {live_server.key('other', 'ingest')}"}
    slow = services.store
    assert isinstance(slow, SlowStore)
    deadline = time.monotonic() + 20
    while slow.running < services.settings.max_searches_per_key:  # the reads' threads are busy
        assert time.monotonic() < deadline and hostile.poll() is None, "no searches came"
        time.sleep(0.05)
    publish, ready, fresh_key = [], [], []
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for n in range(150):
            started = time.perf_counter()
            answer = client.post("/v1/events", json={"action": "user.signed_in"}, headers=writer)
            publish.append(time.perf_counter() - started)
            assert answer.status_code == 201, answer.text
            if n % 10 == 0:  # a key nobody used yet: its check reads the key store
                new = {"authorization": f"Bearer {live_server.key(f't{n}', 'ingest')}"}
                started = time.perf_counter()
                answer = client.post("/v1/events", json={"action": "a.b"}, headers=new)
                fresh_key.append(time.perf_counter() - started)
                assert answer.status_code == 201, answer.text
                started = time.perf_counter()
                assert client.get("/readyz").status_code == 200
                ready.append(time.perf_counter() - started)
            time.sleep(0.01)
    assert slow.running > 0, "the searches ended before the measurement did"
    out, err = hostile.communicate("", timeout=60)
    assert hostile.returncode == 0, err
    counts = dict(ast.literal_eval(out))  # [(status, count), ...] printed by the subprocess
    assert counts.get("429-checked", 0) > 0 and set(counts) <= {"200", "429-checked"}, counts
    # Searches never took more than the reads' threads.
    assert slow.most_running <= services.settings.read_threads
    print(f"publish p50 {percentile(publish, 0.5) * 1000:.1f} ms p99 "
          f"{percentile(publish, 0.99) * 1000:.1f} ms; new key max {max(fresh_key) * 1000:.1f} ms; "
          f"readyz max {max(ready) * 1000:.1f} ms; hostile {counts}")  # fmt: skip
    assert percentile(publish, 0.99) < 0.1, sorted(publish)[-5:]
    assert max(fresh_key) < 0.25, fresh_key
    assert max(ready) < 0.25, ready


def test_a_key_holds_a_bounded_number_of_exports(
    live_server: LiveServer, services: Services
) -> None:
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    limit = services.settings.max_exports_per_key
    slow = services.store
    assert isinstance(slow, SlowStore)
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        client.post("/v1/events", json={"action": "a.b"}).raise_for_status()
        slow.gate.clear()  # exports now hold their slot until the gate opens
        held = [
            threading.Thread(target=lambda: client.get("/v1/export").raise_for_status())
            for _ in range(limit)
        ]
        for thread in held:
            thread.start()
        deadline = time.monotonic() + 10
        while slow.running < limit:
            assert time.monotonic() < deadline, "the exports did not start"
            time.sleep(0.02)
        started = time.perf_counter()
        refused = client.get("/v1/export")
        assert time.perf_counter() - started < SEARCH_SECONDS  # refused at once, not queued
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        (detail,) = refused.json()["error"]["details"]  # the one shape: a list of objects
        assert (detail["limit"], detail["retry_after"]) == (limit, 1) and detail["message"]
        slow.gate.set()
        for thread in held:
            thread.join(timeout=30)
        assert client.get("/v1/export").status_code == 200  # the slots came back


def test_a_key_running_its_searches_still_gets_one_event(
    live_server: LiveServer, services: Services
) -> None:
    """A point read takes no search slot: a key whose searches all run gets
    its event, not a 429 (and searches beyond the limit still get one)."""
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    limit = services.settings.max_searches_per_key
    slow = services.store
    assert isinstance(slow, SlowStore)
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        client.post("/v1/events", json={"id": "one", "action": "a.b"}).raise_for_status()
        slow.gate.clear()  # searches now hold their slot until the gate opens
        held = [threading.Thread(target=lambda: client.get("/v1/events")) for _ in range(limit)]
        for thread in held:
            thread.start()
        try:
            deadline = time.monotonic() + 10
            while services.slots.held(services.keys.list()[0].key_id, "search") < limit:
                assert time.monotonic() < deadline, "the searches did not start"
                time.sleep(0.02)
            assert client.get("/v1/events").status_code == 429
            # The key's searches may fill the read threads too: the gets wait
            # for one (the gate opens soon), but are never refused.
            threading.Timer(0.5, slow.gate.set).start()
            for event_id in ("one", "one", "missing"):
                answer = client.get(f"/v1/events/{event_id}")
                assert answer.status_code == (200 if event_id == "one" else 404), answer.text
        finally:
            slow.gate.set()
            for thread in held:
                thread.join(timeout=30)


def send_raw(url: str, request: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(request)
    return sock


def request_counts(metrics: str, status: str) -> dict[str, float]:
    """`auditlake_request_seconds_count` by route for one status."""
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("auditlake_request_seconds_count{") and f'status="{status}"' in line:
            route = line.split('route="')[1].split('"')[0]
            found[route] = found.get(route, 0) + float(line.rsplit(" ", 1)[1])
    return found


def test_a_client_hanging_up_is_499_not_a_server_error(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    key = live_server.key("acme")
    headers = {"authorization": f"Bearer {key}"}
    for path in ("/v1/events", "/v1/events/batch"):  # the body stops half-way
        sock = send_raw(
            live_server.url,
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'{"action": "user.',
        )
        time.sleep(0.3)
        sock.close()
    events = [{"action": "a.b"} for _ in range(60)]
    httpx.post(f"{live_server.url}/v1/events/batch", json={"events": events}, headers=headers)
    # An export whose client leaves after the first sub-page (the next is slow).
    sock = send_raw(
        live_server.url,
        f"GET /v1/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode(),
    )
    assert sock.recv(12) == b"HTTP/1.1 200"
    sock.close()
    deadline = time.monotonic() + 10
    while True:
        metrics = httpx.get(f"{live_server.url}/metrics").text
        gone = request_counts(metrics, "499")
        if gone == {"publish_event": 1, "publish_batch": 1, "export_events": 1}:
            break
        assert time.monotonic() < deadline, gone
        time.sleep(0.1)
    assert request_counts(metrics, "500") == {}
    serious = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL")]
    assert serious == [], [r.getMessage() for r in serious]
    assert all(r.exc_info is None for r in caplog.records)


def test_search_pages_arrive_whole_in_sub_pages(live_server: LiveServer) -> None:
    """A page larger than a sub-page comes back the same as one read at once."""
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    events: list[dict[str, Any]] = [
        {"id": f"e{n:03d}", "action": "big.event", "metadata": {"blob": "x" * 30_000}}
        for n in range(130)
    ]
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
        for start in range(0, len(events), 20):
            batch = {"events": events[start : start + 20]}
            client.post("/v1/events/batch", json=batch).raise_for_status()
        seen: list[str] = []
        params = {"limit": "120", "order": "asc"}
        while True:
            page = client.get("/v1/events", params=params).json()
            seen += [e["id"] for e in page["data"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == [e["id"] for e in events]
        lines = client.get("/v1/export", params={"format": "ndjson"}).text.splitlines()
        assert len(lines) == len(events)

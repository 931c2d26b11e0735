"""`auditlake serve` archiving into its lake folder under steady writes,
SIGKILLed at random points (also between a partition's temp file and its
rename, and while it moves a lake of the legacy layout) and restarted:
afterwards every journaled event is in the lake exactly once, and no
half-written file is visible."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

from auditlake.core.event import Event
from auditlake.lake.layout import merge, read_rows
from auditlake.lake.objects import LocalObjects

from .helpers import Server, create_key, stored_keys

KILLS = 3
BATCH = 100
DEADLINE_SECONDS = 90.0


class Writer:
    """Posts batches of fresh events until stopped; failures are just retried."""

    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.key = key
        self.stopping = threading.Event()
        self.next_id = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self.stopping.is_set():
                ids = [f"ev-{self.next_id + n}" for n in range(BATCH)]
                body = {"events": [{"id": i, "action": "doc.viewed"} for i in ids]}
                headers = {"authorization": f"Bearer {self.key}"}
                try:
                    url = f"{self.server.url}/v1/events/batch"
                    response = client.post(url, json=body, headers=headers)
                    if response.status_code in (200, 201):
                        self.next_id += BATCH
                except httpx.TransportError:
                    time.sleep(0.05)


def lake_rows(folder: Path) -> Counter[tuple[str, str]]:
    objects = LocalObjects(folder)
    found: Counter[tuple[str, str]] = Counter()
    for path in objects.list(""):
        stored = objects.get(path)
        assert stored is not None
        found.update((r["tenant"], r["id"]) for r in read_rows(stored[0]))
    return found


def archiver_lag(server: Server) -> float:
    for line in httpx.get(f"{server.url}/metrics", timeout=5.0).text.splitlines():
        if line.startswith('auditlake_consumer_lag_events{consumer="archiver"}'):
            return float(line.split()[-1])
    return float("inf")


def test_sigkilled_archiving_leaves_every_event_in_the_lake_once(tmp_path: Path) -> None:
    rng = random.Random(11)
    config = tmp_path / "auditlake.toml"
    config.write_text("[lake]\nbatch_events = 300\nbatch_seconds = 0.2\n")
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "acme")
    server = Server(data_dir, tmp_path / "server.log", config=config)
    writer = Writer(server, key)
    try:
        server.start()
        writer.thread.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.8, 2.0))
            server.kill()
            server.start()
        time.sleep(1.0)
        writer.stopping.set()
        writer.thread.join(timeout=10)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while archiver_lag(server) > 0:
            assert time.monotonic() < deadline, "the archiver did not catch up"
            time.sleep(0.2)
        server.stop()
    finally:
        server.kill()
    journaled = stored_keys(data_dir / "journal.db")
    archived = lake_rows(data_dir / "lake")
    assert len(journaled) >= 3 * BATCH
    assert set(archived) == set(journaled)
    assert all(count == 1 for count in archived.values())
    leftovers = [
        p for p in (data_dir / "lake").rglob("*") if p.is_file() and p.suffix != ".parquet"
    ]
    assert all(p.name.startswith(".") for p in leftovers)  # only lock and temp files, hidden


LEGACY_HOURS = 250  # per tenant: 500 files to move, a few seconds' work


def legacy_lake(folder: Path) -> set[tuple[str, str]]:
    """A lake in the layout before issue 11 (`tenant=<t>/year=YYYY/month=MM/...`)
    with five events per file; returns their (tenant, id)."""
    objects = LocalObjects(folder)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    keys = set()
    for tenant in ("acme", "123"):
        for hour in range(LEGACY_HOURS):
            at = start + timedelta(hours=hour)
            events = [
                Event(id=f"old-{hour}-{n}", tenant=tenant, action="doc.viewed",
                      occurred_at=at + timedelta(minutes=n), received_at=at, source="api",
                      caller="key:k")
                for n in range(5)
            ]  # fmt: skip
            path = (
                f"tenant={quote(tenant, safe='')}/year={at.year:04d}/month={at.month:02d}/"
                f"day={at.day:02d}/hour={at.hour:02d}/events.parquet"
            )
            assert objects.put(path, merge(None, events)[0], None)
            keys |= {(tenant, e.id) for e in events}
    return keys


def legacy_files(folder: Path) -> list[Path]:
    return list(folder.glob("tenant=*/**/*.parquet"))


def test_sigkilled_while_moving_a_legacy_lake_loses_and_repeats_nothing(tmp_path: Path) -> None:
    config = tmp_path / "auditlake.toml"
    config.write_text("[lake]\nbatch_events = 300\nbatch_seconds = 0.2\n")
    data_dir = tmp_path / "data"
    lake = data_dir / "lake"
    legacy = legacy_lake(lake)
    key = create_key(data_dir, "acme")
    server = Server(data_dir, tmp_path / "server.log", config=config)
    writer = Writer(server, key)
    try:
        server.start()
        writer.thread.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(legacy_files(lake)) == 2 * LEGACY_HOURS:  # the move has not begun
            assert time.monotonic() < deadline, "the archiver did not start moving"
            time.sleep(0.01)
        server.kill()  # in the middle of the move
        left = len(legacy_files(lake))
        assert 0 < left < 2 * LEGACY_HOURS
        server.start()
        time.sleep(1.0)
        writer.stopping.set()
        writer.thread.join(timeout=10)
        while archiver_lag(server) > 0:
            assert time.monotonic() < deadline, "the archiver did not catch up"
            time.sleep(0.2)
        server.stop()
    finally:
        server.kill()
    archived = lake_rows(lake)
    assert set(archived) == legacy | set(stored_keys(data_dir / "journal.db"))
    assert all(count == 1 for count in archived.values())
    assert legacy_files(lake) == []


def test_a_sigterm_to_the_whole_process_group_still_archives_what_was_left(
    tmp_path: Path,
) -> None:
    """systemd's default stop signals every process of the service: the
    children leave it to the server, which drains and lets them finish and
    close their databases."""
    config = tmp_path / "auditlake.toml"
    config.write_text("[lake]\nbatch_events = 10000\nbatch_seconds = 3600\n")  # only the stop
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "acme")
    server = Server(data_dir, tmp_path / "server.log", config=config)
    try:
        server.start()
        events = [{"id": f"g{n}", "action": "x"} for n in range(5)]
        response = httpx.post(f"{server.url}/v1/events/batch", json={"events": events},
                              headers={"authorization": f"Bearer {key}"}, timeout=10)  # fmt: skip
        assert response.status_code == 201, response.text
        assert server.stop(whole_group=True) in (0, -signal.SIGTERM)
    finally:
        server.kill()
    assert set(lake_rows(data_dir / "lake")) == {("acme", f"g{n}") for n in range(5)}
    assert "restarting" not in server.log()
    # Every process closed its connections: the WAL files were folded into
    # the databases, so the .db files alone are a whole copy after a stop.
    assert sorted(p.name for p in data_dir.glob("*-wal")) == []

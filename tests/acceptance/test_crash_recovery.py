"""Crash recovery of `auditlake serve`: SIGKILL under concurrent load, restart.

Every event carries an id the test chose, so each one is accounted for:
whatever got a 2xx is stored exactly once after any number of crashes, a
request that failed (no answer, or 5xx) left all of its events or none, and
re-sending a failed request stores what is missing and reports the rest as
duplicates.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from .helpers import Server, create_key, stored_keys, stored_row_count

TENANTS = ("acme", "globex")
SENDERS = 6  # concurrent clients, spread over the tenants
KILLS = 3
MIN_ACKED_EVENTS = 20_000
KILL_AFTER = (5_500, 8_000)  # acknowledged events in a cycle before its SIGKILL
SINGLE_SHARE = 0.3  # the rest are batches of 1..MAX_BATCH events
MAX_BATCH = 200
PHASE_SECONDS = 25.0  # a load phase ends by then whatever was acknowledged
REQUEST_SECONDS = 15.0

Key = tuple[str, str]  # (tenant, id)


@dataclass
class Sent:
    """One request and what came of it; `status` None means no answer."""

    tenant: str
    ids: tuple[str, ...]
    batch: bool
    status: int | None = None
    body: Any = None

    @property
    def keys(self) -> list[Key]:
        return [(self.tenant, event_id) for event_id in self.ids]

    @property
    def acked(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


def make_event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "action": "user.signed_in",
        "actor": {"id": event_id.split("-r", maxsplit=1)[0], "type": "user"},
        "targets": [{"id": "doc-1", "type": "document"}],
        "metadata": {"probe": event_id},
    }


def send(client: httpx.Client, sent: Sent) -> Sent:
    """POST the request (single or batch); fill in its status and body."""
    events = [make_event(event_id) for event_id in sent.ids]
    try:
        if sent.batch:
            response = client.post("/v1/events/batch", json={"events": events})
        else:
            response = client.post("/v1/events", json=events[0])
    except httpx.TransportError:
        return sent
    sent.status = response.status_code
    try:
        sent.body = response.json()
    except ValueError:
        sent.body = response.text
    return sent


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Load:
    """SENDERS threads posting fresh events until stopped."""

    def __init__(self, url: str, keys: dict[str, str], label: str, seed: int) -> None:
        self.url = url
        self.keys = keys
        self.label = label
        self.seed = seed
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sent: list[Sent] = []
        self.acked_events = 0
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(SENDERS)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_for(self, acked_events: int) -> None:
        """Block until that many events were acknowledged, or PHASE_SECONDS pass."""
        deadline = time.monotonic() + PHASE_SECONDS
        while self.acked_events < acked_events and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> list[Sent]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_SECONDS + 5)
            assert not thread.is_alive(), "a sender did not stop"
        assert not self.errors, f"a sender crashed: {self.errors[0]!r}"
        return self.sent

    def _run(self, worker: int) -> None:
        try:
            self._send_until_stopped(worker)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)
            raise

    def _send_until_stopped(self, worker: int) -> None:
        rng = random.Random(self.seed * 100 + worker)
        tenant = TENANTS[worker % len(TENANTS)]
        prefix = f"{self.label}-w{worker}"
        headers = bearer(self.keys[tenant])
        with httpx.Client(base_url=self.url, headers=headers, timeout=REQUEST_SECONDS) as client:
            number = 0
            while not self.stopping.is_set():
                batch = rng.random() >= SINGLE_SHARE
                size = rng.randint(1, MAX_BATCH) if batch else 1
                ids = tuple(f"{prefix}-r{number}-e{i}" for i in range(size))
                number += 1
                self._record(send(client, Sent(tenant, ids, batch)))

    def _record(self, sent: Sent) -> None:
        with self.lock:
            self.sent.append(sent)
            if sent.acked:
                self.acked_events += len(sent.ids)


def expected_answer(sent: Sent, status: str) -> tuple[int, Any]:
    """The status code and body of a request whose every event got `status`."""
    code = 201 if status == "created" else 200
    if not sent.batch:
        return code, {"id": sent.ids[0], "status": status}
    results = [{"id": event_id, "status": status} for event_id in sent.ids]
    created = len(sent.ids) if status == "created" else 0
    return code, {"results": results, "created": created, "duplicates": len(sent.ids) - created}


def check_answers(sent: list[Sent]) -> None:
    """Fresh ids: a 2xx says every event was created; no request was refused."""
    refused = [s for s in sent if not s.acked and not s.failed]
    assert not refused, f"requests refused with 4xx: {refused[:3]}"
    for s in sent:
        if s.acked:
            assert (s.status, s.body) == expected_answer(s, "created"), s


def check_store(db: Path, acked: set[Key], sent_keys: set[Key], failed: list[Sent]) -> Counter[Key]:
    """After a restart: acked events once each, nothing unknown, no half batch."""
    stored = stored_keys(db)
    doubled = [key for key, count in stored.items() if count != 1]
    assert not doubled, f"events stored more than once: {doubled[:10]}"
    assert stored_row_count(db) == len(stored)
    lost = acked - stored.keys()
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {sorted(lost)[:10]}"
    unknown = stored.keys() - sent_keys
    assert not unknown, f"events nobody sent: {sorted(unknown)[:10]}"
    for s in failed:
        present = sum(1 for key in s.keys if key in stored)
        assert present in (0, len(s.ids)), f"half-stored: {present}/{len(s.ids)} of {s.ids[0]}"
    return stored


def retry(url: str, keys: dict[str, str], failed: list[Sent], stored: Counter[Key]) -> int:
    """Re-send each failed request as it was; the number that had already landed."""
    landed = 0
    clients = {
        tenant: httpx.Client(base_url=url, headers=bearer(key), timeout=REQUEST_SECONDS)
        for tenant, key in keys.items()
    }
    try:
        for s in failed:
            was_stored = s.keys[0] in stored
            landed += was_stored
            again = send(clients[s.tenant], Sent(s.tenant, s.ids, s.batch))
            expected = expected_answer(s, "duplicate" if was_stored else "created")
            assert (again.status, again.body) == expected, again
    finally:
        for client in clients.values():
            client.close()
    return landed


def export_keys(url: str, keys: dict[str, str]) -> Counter[Key]:
    """Every event of every tenant through the NDJSON export, checking bodies."""
    found: Counter[Key] = Counter()
    for tenant, key in keys.items():
        params = {"format": "ndjson"}
        with httpx.stream(
            "GET", f"{url}/v1/export", params=params, headers=bearer(key), timeout=60
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line:
                    continue
                event = msgspec.json.decode(line)
                assert event["tenant"] == tenant
                assert event["metadata"] == {"probe": event["id"]}
                found[tenant, event["id"]] += 1
    return found


@dataclass
class Tally:
    """Everything sent so far, and what the test knows of it."""

    acked: set[Key]
    sent: set[Key]
    failed: list[Sent]  # failed requests of the last cycle, not yet re-sent
    landed_unacked: int = 0

    def add(self, sent: list[Sent]) -> None:
        check_answers(sent)
        self.sent.update(key for s in sent for key in s.keys)
        self.acked.update(key for s in sent if s.acked for key in s.keys)
        self.failed = [s for s in sent if s.failed]

    def check(self, db: Path) -> Counter[Key]:
        return check_store(db, self.acked, self.sent, self.failed)

    def retry_failed(self, url: str, keys: dict[str, str], stored: Counter[Key]) -> None:
        self.landed_unacked += retry(url, keys, self.failed, stored)
        self.acked.update(key for s in self.failed for key in s.keys)
        self.failed = []


def crash_cycle(server: Server, keys: dict[str, str], tally: Tally, cycle: int, seed: int) -> None:
    """Load the server until a random number of events were acknowledged, SIGKILL it."""
    rng = random.Random(seed)
    with Load(server.url, keys, f"c{cycle}", seed) as load:
        load.wait_for(rng.randint(*KILL_AFTER))
        time.sleep(rng.uniform(0, 0.05))
        server.kill()
    tally.add(load.sent)
    assert tally.failed, f"cycle {cycle}: the kill hit no request"
    print(f"cycle {cycle}: {len(load.sent)} requests, {len(tally.failed)} failed")


@pytest.mark.timeout(300)
def test_acked_events_survive_sigkill_exactly_once(server: Server, data_dir: Path) -> None:
    seed = random.randrange(1_000_000)
    print(f"seed {seed}")
    keys = {tenant: create_key(data_dir, tenant) for tenant in TENANTS}
    db = data_dir / "journal.db"
    tally = Tally(set(), set(), [])
    stored_at_kill: Counter[Key] = Counter()

    for cycle in range(KILLS):
        server.start()
        stored = tally.check(db)
        assert stored == stored_at_kill, "the restart changed what was stored"
        tally.retry_failed(server.url, keys, stored)
        crash_cycle(server, keys, tally, cycle, seed + cycle)
        stored_at_kill = tally.check(db)  # read-only, while no server runs

    server.start()
    stored = tally.check(db)
    assert stored == stored_at_kill, "the restart changed what was stored"
    tally.retry_failed(server.url, keys, stored)
    with Load(server.url, keys, "final", seed + KILLS) as load:  # top up to the minimum
        load.wait_for(max(MIN_ACKED_EVENTS - len(tally.acked), 1_000))
    tally.add(load.sent)
    assert not tally.failed, f"requests failed without a crash: {tally.failed[:3]}"

    stored = tally.check(db)
    assert stored.keys() == tally.acked == tally.sent
    assert len(tally.acked) >= MIN_ACKED_EVENTS
    assert export_keys(server.url, keys) == stored
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert "Traceback" not in server.log(), server.log()
    print(f"{len(tally.acked)} events acked; {tally.landed_unacked} unacked requests had landed")

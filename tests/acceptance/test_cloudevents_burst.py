"""A burst of Chainguard pull events into `auditlake serve`, SIGKILLed once
in the middle and restarted, while the senders retry whatever was not
acknowledged: every event ends up stored exactly once."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from pathlib import Path

import httpx
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from tests.issuer import LocalIssuer

from .helpers import Server, stored_keys

EVENTS = 10_000
SENDERS = 8
KILL_AFTER = 3_000  # acknowledged events before the SIGKILL
DEADLINE_SECONDS = 240.0
GROUP = "0475f6baca584a8964a6bce6b74dbe78dd8805b6"


def pull_message(n: int) -> tuple[dict[str, str], bytes]:
    failed = n % 10 == 0
    event = CloudEvent(
        attributes={"type": "dev.chainguard.registry.pull.v1", "source": "cgr.dev",
                    "id": f"burst-{n}", "subject": f"{GROUP}/repo-{n % 50}"},
        data={"actor": {"subject": f"user:{n % 97}"},
              "body": {"repository": f"repo-{n % 50}", "repo_id": f"{GROUP}/repo-{n % 50}",
                       "tag": "latest", "digest": f"sha256:{n:064x}", "method": "GET",
                       "type": "manifest", "location": "ColumbusOHUS", "user_agent": "crane",
                       "error": {"status": 403, "code": "DENIED"} if failed else None}},
    )  # fmt: skip
    message = to_binary(event, JSONFormat())
    return message.headers, message.body


class Burst:
    """Senders that take event numbers from a queue and put back what failed."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.token = token
        self.todo: queue.Queue[int] = queue.Queue()
        for n in range(EVENTS):
            self.todo.put(n)
        self.acked: dict[int, str] = {}  # event number -> the id auditlake gave it
        self.lock = threading.Lock()
        # Built once: a retry re-sends the same message, as a vendor's
        # redelivery does (the SDK stamps `time` when an event is built, and a
        # rebuilt event with another time is another event: a 409).
        self.messages = [pull_message(n) for n in range(EVENTS)]

    def send_all(self, client: httpx.Client) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            try:
                n = self.todo.get(timeout=0.2)
            except queue.Empty:
                if len(self.acked) == EVENTS:
                    return
                continue
            headers, body = self.messages[n]
            headers = {**headers, "authorization": f"Bearer {self.token}"}
            try:
                response = client.post(f"{self.server.url}/v1/cloudevents", content=body,
                                       headers=headers)  # fmt: skip
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code in (200, 201):
                with self.lock:
                    self.acked[n] = response.json()["id"]
            else:
                assert response is None or response.status_code >= 500, response.text
                self.todo.put(n)  # retry, as a vendor's delivery would
                time.sleep(0.05)


def test_burst_with_a_sigkill_stores_every_acknowledged_event_once(
    tmp_path: Path, issuer: LocalIssuer
) -> None:
    config = tmp_path / "auditlake.toml"
    config.write_text(
        "[[sources.cloudevents]]\n"
        'name = "chainguard"\ntenant = "platform"\npreset = "chainguard"\n'
        f'group = "{GROUP}"\n'
        f'oidc = {{ issuer = "{issuer.url}", audience = "customer" }}\n'
    )
    data_dir = tmp_path / "data"
    server = Server(data_dir, tmp_path / "server.log", config=config)
    server.start()
    burst = Burst(server, issuer.token(f"webhook:{GROUP}", exp=int(time.time()) + 900))
    clients = [httpx.Client(timeout=10.0) for _ in range(SENDERS)]
    threads = [threading.Thread(target=burst.send_all, args=(c,)) for c in clients]
    try:
        for thread in threads:
            thread.start()
        while len(burst.acked) < KILL_AFTER:
            assert all(t.is_alive() for t in threads), server.log()
            time.sleep(0.01)
        server.kill()
        killed_at = len(burst.acked)
        time.sleep(0.5)
        server.start()
        for thread in threads:
            thread.join(timeout=DEADLINE_SECONDS)
        assert len(burst.acked) == EVENTS, f"only {len(burst.acked)} acknowledged"
        assert KILL_AFTER <= killed_at < EVENTS
        wait_indexed(server)
        server.stop()
    finally:
        server.kill()
        for client in clients:
            client.close()

    stored = stored_keys(data_dir / "journal.db")
    assert set(stored) == {("platform", event_id) for event_id in burst.acked.values()}
    assert all(count == 1 for count in stored.values())
    assert len(set(burst.acked.values())) == EVENTS
    with sqlite3.connect(f"file:{data_dir / 'store.db'}?mode=ro", uri=True) as store:
        typed = store.execute(
            "SELECT count(*), sum(error_code = 'DENIED') FROM chainguard_registry_pull_v1"
        ).fetchone()
    assert typed == (EVENTS, EVENTS // 10)


def wait_indexed(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = httpx.get(f"{server.url}/readyz", timeout=5.0).json()
        if ready.get("index_lag_events") == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the recorder did not catch up")

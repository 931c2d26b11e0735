"""/readyz while the store's ping hangs: one ping at a time, not a thread
left behind per probe; ready again once the store answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from tests.store_doubles import StoreWrapper

from auditlake.app import build_services
from auditlake.config import Settings
from auditlake.runtime import Services
from auditlake.store.base import EventStore
from auditlake.web import app as web_app
from auditlake.web.app import create_app

PROBES = 20


class HangingPing(StoreWrapper):
    """A store whose ping blocks until `answer` is set, noting its threads."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.answer = threading.Event()
        self.threads: set[int] = set()

    def ping(self) -> None:
        self.threads.add(threading.get_ident())
        self.answer.wait(60)
        self.inner.ping()

    def close(self) -> None:
        self.answer.set()
        self.inner.close()


@pytest.fixture
def services(settings: Settings) -> Services:
    built = build_services(settings)
    built.store = HangingPing(built.store)
    return built


@pytest.fixture
def client(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(web_app, "READY_TIMEOUT", 0.5)
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.mark.timeout(120)
def test_a_hanging_ping_holds_one_thread_and_probes_answer_503(
    client: TestClient, services: Services
) -> None:
    store = services.store
    assert isinstance(store, HangingPing)
    started = time.monotonic()
    answers = [client.get("/readyz") for _ in range(PROBES)]
    elapsed = time.monotonic() - started
    assert {a.status_code for a in answers} == {503}
    assert all(a.json()["problems"] == ["store: no answer within 0.5 s"] for a in answers)
    assert len(store.threads) == 1, store.threads  # one ping, shared by every probe
    assert elapsed < 0.5 * PROBES / 2  # the probes after the first answer at once
    store.answer.set()
    deadline = time.monotonic() + 10
    while (ready := client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.05)
    assert ready.json()["status"] == "ready"


@pytest.mark.timeout(60)
def test_concurrent_probes_share_one_ping(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_app, "READY_TIMEOUT", 20.0)
    store = services.store
    assert isinstance(store, HangingPing)
    results: list[int] = []
    with TestClient(create_app(services)) as client:
        probes = [
            threading.Thread(target=lambda: results.append(client.get("/readyz").status_code))
            for _ in range(8)
        ]
        for probe in probes:
            probe.start()
        time.sleep(1.0)  # every probe waits for the one ping
        store.answer.set()  # which answers: every waiting probe is ready
        for probe in probes:
            probe.join(timeout=30)
    assert len(store.threads) == 1
    assert sorted(results) == [200] * 8


@pytest.mark.timeout(120)
def test_a_hanging_lag_read_holds_one_thread_and_metrics_still_answer(
    client: TestClient, services: Services
) -> None:
    assert services.consumers is not None and services.consumers.runners
    runner = services.consumers.runners[0]
    answer, threads = threading.Event(), set()

    def hanging_lag() -> tuple[int, float]:
        threads.add(threading.get_ident())
        answer.wait(60)
        return (7, 1.5)

    runner.lag = hanging_lag  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        scrapes = [client.get("/metrics") for _ in range(PROBES)]
        elapsed = time.monotonic() - started
        assert {s.status_code for s in scrapes} == {200}
        assert len(threads) == 1, threads  # one lag read, shared by every scrape
        assert elapsed < 0.5 * PROBES / 2  # the scrapes after the first answer at once
    finally:
        answer.set()
    deadline = time.monotonic() + 10
    gauge = f'auditlake_consumer_lag_events{{consumer="{runner.name}"}} 7.0'
    while gauge not in (text := client.get("/metrics").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)

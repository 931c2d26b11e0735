"""The whole polling chain against the fake Cloudflare API: the service's
pollers, real fetchers, the embedded journal, dead letters and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.fake_cloudflare import FakeCloudflare, v1_item

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.core.query import parse_query
from auditlake.errors import AuditlakeError
from auditlake.runtime import Services

TOKEN = "cf-poll-token"
ACCOUNT = "0a1b2c3d4e5f"
NOW = datetime.now(UTC)


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(token=TOKEN) as api:
        yield api


@pytest.fixture
def services(tmp_path: Path, fake: FakeCloudflare) -> Iterator[Services]:
    block = {
        "name": "cf", "account_id": ACCOUNT, "api": "v1", "base_url": fake.base_url,
        "token_env": "CF_TOKEN", "safety_lag": 60.0, "page_size": 50,
        "initial_checkpoint": (NOW - timedelta(hours=1)).isoformat(), "max_attempts": 3,
        "max_backoff_seconds": 0.2,
    }  # fmt: skip
    settings = load_settings(
        env={"CF_TOKEN": TOKEN},
        overrides={"data_dir": str(tmp_path / "data"), "sources": {"cloudflare": [block]}},
    )
    built = build_services(settings)
    assert built.pollers is not None
    pollers, built.pollers = built.pollers, None  # polled by hand in the tests
    built.start()
    built.pollers = pollers
    try:
        yield built
    finally:
        built.close()


def poll(services: Services) -> Any:
    assert services.pollers is not None
    return services.pollers.runners[0].poller.poll_once()


def test_malformed_items_are_dead_lettered_and_the_rest_kept(
    services: Services, fake: FakeCloudflare
) -> None:
    good = [v1_item(n, NOW - timedelta(minutes=10, seconds=-n), ACCOUNT) for n in range(120)]
    broken: list[Any] = [{"id": "no-time"}, "not an object", {**good[0], "id": ""}]
    fake.add(ACCOUNT, good[:60] + broken, at=NOW - timedelta(minutes=9))
    fake.add(ACCOUNT, good[60:])
    result = poll(services)
    assert (result.fetched, result.created, result.invalid) == (123, 120, 3)
    assert services.recorder is not None
    services.recorder.sync().result(timeout=30)  # searchable once indexed
    page = services.store.search(parse_query(ACCOUNT, {"limit": "1000"}))
    assert len(page.events) == 120
    metrics = services.metrics.render().decode()
    assert 'auditlake_events_total{result="rejected",source="poller:cf"} 3.0' in metrics
    assert 'auditlake_poll_lag_seconds{source="cf"}' in metrics


def test_a_refused_poll_keeps_the_checkpoint_and_counts_the_error(
    services: Services, fake: FakeCloudflare
) -> None:
    fake.add(ACCOUNT, [v1_item(1, NOW - timedelta(minutes=5), ACCOUNT)])
    fake.fail_unsuccessful(1, errors=[{"code": 10000, "message": "Authentication error"}])
    with pytest.raises(AuditlakeError, match="Authentication error"):
        poll(services)
    fake.fail_500(2)  # retried within the poll
    assert poll(services).created == 1
    metrics = services.metrics.render().decode()
    assert 'auditlake_poll_errors_total{kind="permanent",source="cf"} 1.0' in metrics
    assert TOKEN not in metrics

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from auditlake.metrics import Metrics
from auditlake.pollers.poller import PollResult


def gauge(metrics: Metrics, name: str) -> float:
    found = re.search(rf'^{name}{{source="cf"}} (\S+)$', metrics.render().decode(), re.M)
    assert found is not None, name
    return float(found.group(1))


def test_the_poll_lag_is_read_at_each_scrape_so_it_grows_while_polls_fail() -> None:
    now = datetime.now(UTC)
    clock = [now.timestamp()]
    metrics = Metrics(clock=lambda: clock[0])
    checkpoint = now - timedelta(seconds=30)
    metrics.polled("cf", PollResult(now, now, checkpoint=checkpoint), now)
    first = gauge(metrics, "auditlake_poll_lag_seconds")
    assert first == 30.0
    assert gauge(metrics, "auditlake_poll_checkpoint_timestamp_seconds") == checkpoint.timestamp()
    metrics.poll_failed("cf", transient=True)
    clock[0] += 0.25
    assert gauge(metrics, "auditlake_poll_lag_seconds") == 30.25
    # A backfill (no checkpoint) leaves the lag alone.
    metrics.polled("cf", PollResult(now, now), now)
    assert gauge(metrics, "auditlake_poll_lag_seconds") == 30.25

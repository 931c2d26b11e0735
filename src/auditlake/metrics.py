"""Prometheus metrics of one running service (its own registry, so several
apps in one test process do not collide). Every part reports here: ingest
counts events (`auditlake.ingest`), the journal its commits, the recorder
its batches, pollers their polls; the HTTP layer times requests
(`web.metrics`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from auditlake.pollers.poller import PollResult


class Metrics:
    """The counters and histograms the service exports on /metrics."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # seconds since the epoch, read at each scrape
        self.registry = CollectorRegistry()
        self.events = Counter(
            "auditlake_events",
            "Events by source and result (accepted, duplicate, rejected).",
            ["source", "result"],
            registry=self.registry,
        )
        self.conflicts = Counter(
            "auditlake_duplicate_conflicts",
            "Events sent or fetched again under a stored id with other content, by source: "
            "refused with 409 (API, CloudEvents) or the stored copy kept (pollers).",
            ["source"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "auditlake_request_seconds",
            "HTTP request latency by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.commit_events = Histogram(
            "auditlake_group_commit_events",
            "Events per group commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "auditlake_group_commit_seconds",
            "Time to write and fsync one group commit.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.index_seconds = Histogram(
            "auditlake_index_step_seconds",
            "Time of one recorder step (indexing a batch of events for search).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.index_events = Counter(
            "auditlake_indexed_events",
            "Events the recorder made searchable.",
            registry=self.registry,
        )
        self.index_lag = Gauge(
            "auditlake_index_lag_events",
            "Events acknowledged but not yet searchable.",
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "auditlake_poll_errors",
            "Polls of a vendor API that failed (the checkpoint stayed), by source and kind.",
            ["source", "kind"],
            registry=self.registry,
        )
        self.poll_last_success = Gauge(
            "auditlake_poll_last_success_timestamp_seconds",
            "When a poll of the source last succeeded (Unix time).",
            ["source"],
            registry=self.registry,
        )
        self.poll_checkpoint = Gauge(
            "auditlake_poll_checkpoint_timestamp_seconds",
            "The source's checkpoint: everything before it is stored (Unix time).",
            ["source"],
            registry=self.registry,
        )
        self.poll_lag = Gauge(
            "auditlake_poll_lag_seconds",
            "How far the source's checkpoint is behind now (it grows while polls fail).",
            ["source"],
            registry=self.registry,
        )
        self.consumer_lag_events = Gauge(
            "auditlake_consumer_lag_events",
            "Journal events a consumer (e.g. the archiver) has not made durable yet.",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_lag_seconds = Gauge(
            "auditlake_consumer_lag_seconds",
            "How long ago the oldest event a consumer has not processed was received.",
            ["consumer"],
            registry=self.registry,
        )
        self.queue_events = Gauge(
            "auditlake_write_queue_events",
            "Events waiting for a group commit.",
            registry=self.registry,
        )

    def observe_commit(self, events: int, seconds: float) -> None:
        """Record one group commit (called from the journal's writer thread)."""
        self.commit_events.observe(events)
        self.commit_seconds.observe(seconds)

    def observe_index(self, events: int, seconds: float) -> None:
        """Record one recorder step (called from the recorder's supervisor thread)."""
        self.index_events.inc(events)
        self.index_seconds.observe(seconds)

    def polled(self, source: str, result: PollResult, now: datetime) -> None:
        """A poll or backfill of `source` finished (PollObserver)."""
        # Its events were counted by ingest, as they were journaled.
        if result.checkpoint is not None:
            checkpoint = result.checkpoint.timestamp()
            self.poll_last_success.labels(source).set(now.timestamp())
            self.poll_checkpoint.labels(source).set(checkpoint)
            # Read at each scrape, so a source whose polls fail shows a growing lag.
            clock = self._clock
            self.poll_lag.labels(source).set_function(lambda: clock() - checkpoint)

    def poll_failed(self, source: str, transient: bool) -> None:
        """A poll of `source` failed (PollObserver)."""
        self.poll_errors.labels(source, "transient" if transient else "permanent").inc()

    def count_events(self, source: str, result: str, amount: int = 1) -> None:
        """Count events by source and result."""
        if amount:
            self.events.labels(source, result).inc(amount)

    def count_conflicts(self, source: str, amount: int = 1) -> None:
        """Count events that came again under a stored id with other content."""
        if amount:
            self.conflicts.labels(source).inc(amount)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

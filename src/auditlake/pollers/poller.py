"""The general poller: one source's window, fetch, map, journal, checkpoint.

Checkpoint rule: a poll asks for `[checkpoint - safety_lag, now)`. Only after
every page of it is durably journaled does the checkpoint move, to
`max(latest event time, now - safety_lag)` capped at `now - safety_lag` (so
to `now - safety_lag`), and never backwards; on any error it stays where it
was. A first poll starts at `initial_checkpoint`, or one `poll_interval`
ago. Asking again for the lag window every time is what picks up events the
vendor publishes late; the journal's exactly-once by `(tenant, id)` makes
the overlap cost nothing but a duplicate count. An item fetched again with
other content than the stored copy keeps the first copy (pages are submitted
`keep_first`: a vendor cannot be answered 409) and is counted in `conflicts`
(`auditlake_duplicate_conflicts_total` in /metrics) and logged.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec

from auditlake.core.event import StoredEvent
from auditlake.core.normalize import Limits, Origin
from auditlake.ingest import Ingest, Submitted
from auditlake.pollers.base import Fetcher, InvalidItem, Mapped, Window
from auditlake.pollers.state import PollerState

log = logging.getLogger(__name__)
JOURNAL_WAIT_SECONDS = 120.0
PIPELINE = 2  # pages waiting for their commit while the next one is fetched


class Schedule(msgspec.Struct, frozen=True):
    """When a source is polled and how far back each poll looks again."""

    poll_interval: float
    safety_lag: float
    initial_checkpoint: datetime | None = None


class PollResult(msgspec.Struct):
    """What one poll (or backfill) did."""

    since: datetime
    before: datetime
    fetched: int = 0
    created: int = 0
    duplicates: int = 0
    conflicts: int = 0  # fetched again with other content; the first copy was kept
    invalid: int = 0
    latest: datetime | None = None  # the newest event time seen
    checkpoint: datetime | None = None  # after the poll; None for a backfill


class PollObserver(Protocol):
    """Where a poller reports (the service's metrics)."""

    def polled(self, source: str, result: PollResult, now: datetime) -> None:
        """A poll or backfill finished."""
        ...

    def poll_failed(self, source: str, transient: bool) -> None:
        """A poll stopped with an error; its checkpoint did not move."""
        ...


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Poller:
    """Polls one source into the journal under one tenant."""

    def __init__(
        self,
        name: str,
        tenant: str,
        fetcher: Fetcher,
        schedule: Schedule,
        *,
        ingest: Ingest,
        state: PollerState,
        limits: Limits,
        observer: PollObserver | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.name = name
        self.tenant = tenant
        self.schedule = schedule
        self._fetcher = fetcher
        self._ingest = ingest
        self._label = f"poller:{name}"
        self._state = state
        self._limits = limits
        self._observer = observer
        self._clock = clock

    def poll_once(self) -> PollResult:
        """One scheduled poll; the checkpoint moves only if all of it was kept."""
        now = self._clock()
        lag = timedelta(seconds=self.schedule.safety_lag)
        start = (
            self._state.checkpoint(self.name)
            or self.schedule.initial_checkpoint
            or now - timedelta(seconds=self.schedule.poll_interval)
        )
        result = self._run(Window(since=min(start, now) - lag, before=now))
        # The rule's max(latest event time, now - lag), capped at now - lag, is
        # now - lag; `advance` never moves a checkpoint back.
        result.checkpoint = now - lag
        self._state.advance(self.name, result.checkpoint)
        self._report(result, now)
        return result

    def backfill(self, since: datetime, before: datetime) -> PollResult:
        """Fetch and keep one window; the checkpoint is left alone."""
        result = self._run(Window(since=since, before=before))
        self._report(result, self._clock())
        return result

    def _run(self, window: Window) -> PollResult:
        """Fetch, map and journal the window; returns once all of it is durable.

        A page's commit overlaps the next page's fetch: at most PIPELINE pages
        wait for the journal at a time."""
        result = PollResult(window.since, window.before)
        pending: deque[Submitted] = deque()
        try:
            for page in self._fetcher.pages(window):
                result.fetched += len(page)
                stored = self._normalized(self._mapped(page, result), result)
                if stored:
                    # Search indexing's backpressure, as for requests: this
                    # thread waits (a poll that waits too long fails, and
                    # is tried again).
                    self._ingest.admission.wait_blocking()
                    pending.append(self._ingest.submit(self._label, stored, keep_first=True))
                while len(pending) > PIPELINE:
                    self._count(pending.popleft(), result)
            while pending:
                self._count(pending.popleft(), result)
        except Exception as exc:
            transient = bool(getattr(exc, "transient", True))
            if self._observer is not None:
                self._observer.poll_failed(self.name, transient)
            raise
        return result

    def _mapped(self, page: Iterable[Any], result: PollResult) -> list[Mapped]:
        mapped = []
        for raw in page:
            try:
                mapped.append(self._fetcher.map_item(raw))
            except InvalidItem as exc:
                self._ingest.rejected(self._label)
                self._reject(raw, exc.message, result)
        newest = max((m.occurred_at for m in mapped), default=None)
        if newest is not None and (result.latest is None or newest > result.latest):
            result.latest = newest
        return mapped

    def _normalized(self, mapped: list[Mapped], result: PollResult) -> list[StoredEvent]:
        """The page's stored events; items over a limit are dead-lettered."""
        origin = Origin(self.tenant, f"poller:{self.name}", "poller", self._clock())
        return self._ingest.normalized_each(
            self._label,
            [m.item for m in mapped],
            origin,
            self._limits,
            [m.provenance for m in mapped],
            lambda index, reason: self._reject(mapped[index].provenance.raw, reason, result),
        )

    def _reject(self, raw: Any, reason: str, result: PollResult) -> None:
        result.invalid += 1
        log.warning("%s: dead-lettered an item: %s", self.name, reason)
        self._state.dead_letter(self.name, reason, raw)

    def _report(self, result: PollResult, now: datetime) -> None:
        if self._observer is not None:
            self._observer.polled(self.name, result, now)

    def _count(self, submitted: Submitted, result: PollResult) -> None:
        """Wait until a page is durable and count what it added."""
        outcome = submitted.result(timeout=JOURNAL_WAIT_SECONDS)
        conflicts = [r.id for r in outcome if r.status == "conflict"]
        created = sum(1 for r in outcome if r.status == "created")
        result.created += created
        result.conflicts += len(conflicts)
        result.duplicates += len(outcome) - created - len(conflicts)
        if conflicts:
            log.warning(
                "%s: %d item(s) fetched again with other content; the first copy is kept: %s",
                self.name, len(conflicts), ", ".join(conflicts[:5]),
            )  # fmt: skip

"""The one way events enter the journal, for every source (the HTTP API,
CloudEvents, pollers, rehydrate): admission, normalization, append, counting.

- **Admission** (`Admission`): while search indexing is too far behind
  (`max_index_lag_events`, or `max_index_lag_seconds` of indexing at the
  recorder's recent rate), new writes wait up to `admit_wait_seconds`, then
  get `Overloaded` (503): ingest never outruns search by more than a bounded
  backlog. Requests wait before reading their body (waiting holds no
  memory); pollers and rehydrate wait in their own threads (a CLI process
  runs no recorder: nothing holds it back but the journal's queue).
- **Normalization** is all or nothing for a request (`normalized`: one
  bad item fails it, nothing stored), or per item for a vendor's pages
  (`normalized_each`: a bad item is handed to `reject`, a poller dead-letters
  it, and the rest goes on).
- **Append and counting**: `submit` hands a batch to the journal; its
  `Submitted.result()` / `wait()` return once the batch is durable and count
  the outcome under the source's label (`auditlake_events_total`,
  `auditlake_duplicate_conflicts_total`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

from auditlake.core.event import EventInput, StoredEvent
from auditlake.core.normalize import Limits, Origin, Provenance, normalize
from auditlake.errors import AuditlakeError, Conflict, InvalidInput, Overloaded
from auditlake.journal.base import AppendResult, Consumer, Journal

ADMIT_POLL_SECONDS = 0.005


class EventCounts(Protocol):
    """Where ingest counts events (the service's metrics)."""

    def count_events(self, source: str, result: str, amount: int = 1) -> None:
        """Count `amount` events of `source` with `result` (accepted,
        duplicate, rejected, ignored)."""
        ...

    def count_conflicts(self, source: str, amount: int = 1) -> None:
        """Count events sent again under a stored id with other content."""
        ...


class Admission:
    """Backpressure from search indexing (see the module's docstring); with
    no recorder (the store is the journal, or a CLI process that runs none)
    every write passes."""

    def __init__(
        self,
        recorder: Consumer | None,
        *,
        max_lag_events: int,
        max_lag_seconds: float,
        wait_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recorder = recorder
        self._max_events = max_lag_events
        self._max_seconds = max_lag_seconds
        self._wait_seconds = wait_seconds
        self._clock = clock

    def behind(self) -> bool:
        """Whether indexing is too far behind for new writes."""
        recorder = self._recorder
        return recorder is not None and (
            recorder.lag() > self._max_events or recorder.seconds_behind() > self._max_seconds
        )

    async def wait(self) -> None:
        """Return once writes may go on; `Overloaded` after `wait_seconds`."""
        deadline = self._clock() + self._wait_seconds
        while self.behind():
            self._check(deadline)
            await asyncio.sleep(ADMIT_POLL_SECONDS)

    def wait_blocking(self) -> None:
        """`wait()`, for a thread of its own (a poller, rehydrate)."""
        deadline = self._clock() + self._wait_seconds
        while self.behind():
            self._check(deadline)
            time.sleep(ADMIT_POLL_SECONDS)

    def _check(self, deadline: float) -> None:
        if self._clock() > deadline:
            raise Overloaded("search indexing is behind; retry shortly", {"retry_after": 1})


class Submitted:
    """A batch handed to the journal; its outcome is counted once, by
    whichever of `result()` or `wait()` sees it first."""

    def __init__(
        self, future: Future[list[AppendResult]], label: str, size: int, counts: EventCounts
    ) -> None:
        self._future = future
        self._label = label
        self._size = size
        self._counts = counts
        self._counted = False

    def result(self, timeout: float | None = None) -> list[AppendResult]:
        """Block until the batch is durable (see `Journal.submit`)."""
        try:
            results = self._future.result(timeout)
        except Conflict as conflict:
            self._count_conflict(conflict)
            raise
        self._count(results)
        return results

    async def wait(self) -> list[AppendResult]:
        """Await until the batch is durable (see `Journal.submit`)."""
        try:
            results = await asyncio.wrap_future(self._future)
        except Conflict as conflict:
            self._count_conflict(conflict)
            raise
        self._count(results)
        return results

    def _count_conflict(self, conflict: Conflict) -> None:
        if not self._counted:
            self._counted = True
            self._counts.count_conflicts(self._label, len(conflict.details or ()))
            self._counts.count_events(self._label, "rejected", self._size)

    def _count(self, results: list[AppendResult]) -> None:
        if self._counted:
            return
        self._counted = True
        created = conflicts = 0
        for result in results:
            created += result.status == "created"
            conflicts += result.status == "conflict"
        self._counts.count_events(self._label, "accepted", created)
        self._counts.count_events(self._label, "duplicate", len(results) - created - conflicts)
        self._counts.count_conflicts(self._label, conflicts)


class Ingest:
    """Admission, normalization, append and counting over one journal
    (without `admission`, nothing holds writes back but the journal's queue)."""

    def __init__(
        self, journal: Journal, counts: EventCounts, admission: Admission | None = None
    ) -> None:
        self.journal = journal
        self.admission = admission or Admission(
            None, max_lag_events=0, max_lag_seconds=0.0, wait_seconds=0.0
        )
        self._counts = counts

    def rejected(self, label: str, amount: int = 1) -> None:
        """Count input refused before normalization (a body that did not parse)."""
        self._counts.count_events(label, "rejected", amount)

    def ignored(self, label: str, amount: int) -> None:
        """Count input a source's settings leave out (CloudEvent types)."""
        self._counts.count_events(label, "ignored", amount)

    def normalized(
        self,
        label: str,
        inputs: list[EventInput],
        origin: Origin,
        limits: Limits,
        provenance: Sequence[Provenance] | None = None,
    ) -> list[StoredEvent]:
        """Every input normalized, or `InvalidInput` (counted) listing every
        problem (`core.normalize.normalize`)."""
        try:
            return normalize(inputs, origin, limits, provenance)
        except AuditlakeError:
            self.rejected(label, len(inputs) or 1)
            raise

    def normalized_each(
        self,
        label: str,
        inputs: list[EventInput],
        origin: Origin,
        limits: Limits,
        provenance: Sequence[Provenance],
        reject: Callable[[int, str], None],
    ) -> list[StoredEvent]:
        """The inputs that normalize; `reject(index, reason)` (and a count)
        for each one that does not."""
        alive = list(range(len(inputs)))
        while alive:
            try:
                return normalize(
                    [inputs[i] for i in alive], origin, limits, [provenance[i] for i in alive]
                )
            except InvalidInput as exc:
                bad = _reasons(exc)
                for position, reason in sorted(bad.items()):
                    reject(alive[position], reason)
                self.rejected(label, len(bad))
                alive = [index for n, index in enumerate(alive) if n not in bad]
        return []

    def submit(
        self, label: str, stored: list[StoredEvent], *, keep_first: bool = False
    ) -> Submitted:
        """Hand `stored` to the journal (`Overloaded` when its queue is full)."""
        future = self.journal.submit(stored, keep_first=keep_first)
        return Submitted(future, label, len(stored), self._counts)

    async def append(self, label: str, stored: list[StoredEvent]) -> list[AppendResult]:
        """Submit and await durability; `Conflict` (409, nothing stored) when
        an event differs from the one stored under its id."""
        if not stored:  # an empty batch: nothing to store, nothing to wait for
            return []
        return await self.submit(label, stored).wait()


def _reasons(error: InvalidInput) -> dict[int, str]:
    """Per input index (0 for a single input), its problems as one line."""
    problems = error.details if isinstance(error.details, list) else []
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        index = int(problem.get("index") or 0)
        reasons.setdefault(index, []).append(f"{problem['field']}: {problem['message']}")
    return {index: "; ".join(lines) for index, lines in reasons.items()} or {0: error.message}

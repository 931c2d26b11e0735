"""What a consumer hands its sink: a `Batch` of journal records; and the two
kinds of sink the runner drives (`Sink`, `PositionedSink`).

Lifecycle contract of a sink:

- `write(batch)` makes its output for every record of the batch durable
  before it returns, idempotently by `(tenant, id)`: the same records written
  twice (after a crash between the output and the commit) leave the same
  output. The batch carries the records' journal positions and stored bytes,
  and decodes their events once, when first asked.
- It raises a transient `AuditlakeError` when retrying may help, or a
  `ConfigError` when its setup is wrong (a missing bucket, denied access):
  the runner retries the batch with capped exponential backoff. Any other
  `AuditlakeError` is permanent and blamed on events: the runner halves the
  batch until the events that cause it are alone and dead-letters those.
- A `PositionedSink` keeps its journal position in the transaction of its
  output (so a crash can never separate the two): `write` moves it to
  `batch.end`, skipping records at or before the position it finds stored,
  and may be handed an empty batch just to move it (past a dead letter, or
  past records a filter dropped). The runner then commits nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from auditlake.core.event import Event
from auditlake.journal.base import Record


class Batch:
    """Journal records for a sink, in position order, covering the journal
    through `end` (the last record's position unless a filter dropped later
    ones); their events are decoded once, on the first call of `events()`."""

    def __init__(
        self, records: list[Record], *, end: int | None = None, events: list[Event] | None = None
    ) -> None:
        self.records = records
        self.end = records[-1].position if end is None else end
        self._events = events

    def events(self) -> list[Event]:
        """The records' events, in the same order."""
        if self._events is None:
            self._events = [record.event() for record in self.records]
        return self._events

    def event(self, index: int) -> Event:
        """The event of record `index`: decoded by `events()` before, or
        decoded now and not kept."""
        if self._events is not None:
            return self._events[index]
        return self.records[index].event()

    def decoded(self, start: int = 0) -> Iterator[tuple[Record, Event]]:
        """The records from index `start` on, each with its event: the ones
        `events()` decoded, or else decoded one at a time and not kept, for
        a sink that needs each event once (the batch never holds them all)."""
        if self._events is not None:
            yield from zip(self.records[start:], self._events[start:], strict=True)
            return
        for record in self.records[start:]:
            yield record, record.event()

    def split(self) -> tuple[Batch, Batch]:
        """The first and the second half (decoded events go with them)."""
        half = len(self.records) // 2
        events = self._events
        first = Batch(self.records[:half], events=None if events is None else events[:half])
        second = Batch(
            self.records[half:], end=self.end, events=None if events is None else events[half:]
        )
        return first, second


class Sink(Protocol):
    """Where a consumer's output goes (the contract is the module's)."""

    def write(self, batch: Batch) -> None:
        """Make the output of `batch` durable (idempotent by tenant and id)."""
        ...


@runtime_checkable
class PositionedSink(Protocol):
    """A sink that stores its journal position with its output."""

    def write(self, batch: Batch) -> None:
        """Make the output durable and move the position to `batch.end`, in
        one transaction."""
        ...

    def position(self) -> int:
        """The last journal position whose output is durable (0: none)."""
        ...

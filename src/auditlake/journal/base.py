"""The journal: the durable, ordered, append-only buffer every source writes to.

Lifecycle contract for every backend:

- `start()` before the first append; `close()` drains what was submitted,
  commits it, and stops. Appends after `close()` raise `Unavailable`.
- `submit(events)` never blocks: it queues the batch or raises `Overloaded`
  when the bounded queue is full (the explicit backpressure signal).
- The returned future resolves only after the batch is durable (fsync or a
  replicated ack), with one `AppendResult` per event in input order. It fails
  with a transient `AuditlakeError` if the batch could not be made durable;
  then nothing of that batch is visible.
- Exactly once by `(tenant, id)`: an event whose key is already stored (or
  appears earlier in the same commit) with the same caller-supplied content
  (`core.event.fingerprint`) is reported `duplicate` with that id and is not
  written again. Under a stored key with other content it is a conflict: the
  whole request fails with `Conflict` and nothing of it is written, or, when
  submitted `keep_first`, the stored copy stays and the item is reported
  `conflict` (`journal.dedupe` judges this for every backend).

The read side (`JournalReader`, `Subscription`) has its own contract, written
on `Subscription`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import Future, InvalidStateError
from typing import Any, Literal, Protocol

import msgspec

from auditlake.core.event import Event, StoredEvent

AppendStatus = Literal["created", "duplicate", "conflict"]


class AppendResult(msgspec.Struct, frozen=True):
    """What happened to one submitted event: `created`, or `duplicate` (the
    same event is already stored under its id)."""

    id: str
    # `conflict` (another event is stored under the id, and stays) only for
    # `keep_first` submissions: an API request with a conflict gets a 409.
    status: AppendStatus


class BatchResult(msgspec.Struct):
    """What happened to a batch of events, one result per event in input order
    (the answer of `POST /v1/events/batch`)."""

    results: list[AppendResult]
    created: int
    duplicates: int


class CommitObserver(Protocol):
    """Told about every group commit (for metrics)."""

    def __call__(self, events: int, seconds: float) -> None: ...


class Journal(Protocol):
    """A durable, ordered, exactly-once event buffer with group commit."""

    def start(self) -> None:
        """Open the backend and begin accepting appends."""

    def submit(
        self, events: list[StoredEvent], *, keep_first: bool = False
    ) -> Future[list[AppendResult]]:
        """Queue a batch; the future resolves once it is durable, or fails with
        `Conflict` (nothing written) when an event conflicts with a stored one
        and `keep_first` is False."""

    def head(self) -> int:
        """The position of the last durable record (0: none), counting every
        batch whose future has resolved."""

    def pending(self) -> int:
        """Events queued but not yet committed."""

    def healthy(self) -> bool:
        """False once the writer has stopped or failed."""

    def write_failure(self) -> str | None:
        """Why writes fail right now (the backend's words), or None."""

    def close(self) -> None:
        """Commit what was submitted, then stop."""


class Consumer(Protocol):
    """Follows the journal from its own durable position (the recorder, and
    later the archiver and forwarders)."""

    def start(self) -> None:
        """Resume after the stored position."""

    def sync(self, head: int = 0) -> Future[None]:
        """Resolves once everything up to `head` (or up to what it last
        heard of the journal, if later) is processed."""

    def lag(self) -> int:
        """Events in the journal not processed yet."""

    def seconds_behind(self) -> float:
        """About how long processing the current lag takes at the recent
        rate; 0.0 while the rate is unknown."""

    def healthy(self) -> bool:
        """False once it has stopped."""

    def close(self) -> None:
        """Process what the journal holds, then stop."""


class Record(msgspec.Struct, frozen=True, gc=False):
    """One journal entry as a consumer reads it.

    `position` orders the journal (the SQLite `seq`; a JetStream stream
    sequence): it increases along the journal, with gaps where retention
    removed entries. `received_us` is when the event was accepted and
    `occurred_us` its `occurred_at` (both microseconds since the Unix epoch),
    `tenant` its tenant: kept beside the body so that a reader can sort and
    group records without decoding them. `body` is the stored JSON of the
    event, decoded only when asked (`event()`)."""

    position: int
    received_us: int
    occurred_us: int
    tenant: str
    body: bytes

    def event(self) -> Event:
        """The stored event (msgspec.DecodeError if the body is not one)."""
        return _decode_event(self.body)


_decode_event = msgspec.json.Decoder(Event).decode


class Subscription(Protocol):
    """One named consumer's view of the journal.

    Lifecycle contract for every backend:

    - A new subscription reads after its *committed* position (0: from the
      start), which the journal keeps under the consumer's name.
    - `fetch` returns the next records in position order, after the last one
      it returned (or after the committed position, or the one given to
      `seek`), never more than `max_events`, and stops after the record
      whose body reaches `max_bytes` in total (so at least one record, and a
      batch's memory is bounded whatever the events' sizes); it waits up to
      `max_wait` seconds for the first one and returns [] if none came.
    - `commit(position)`: the consumer's output of every record up to
      `position` is durable. Durable itself on return; never backwards
      (ValueError). Records fetched but not committed are delivered again to
      the next subscription under that name: after a crash, at least once.
    - `seek(position)`: the next fetch reads after `position`, for a sink
      that keeps its position in its own transaction and so knows better.
    - `wake()`, from any thread: a `fetch` waiting now looks once more at
      once and returns what it finds (for a writer's "committed" news, and
      to stop a consumer without waiting out `max_wait`).
    - `close()` releases the subscription; committed positions stay.
    """

    def fetch(
        self, max_events: int, max_wait: float = 0.0, max_bytes: int | None = None
    ) -> list[Record]:
        """Up to `max_events` records (and about `max_bytes`) after the last
        one fetched."""

    def commit(self, position: int) -> None:
        """Everything up to `position` is done; durable on return."""

    def committed(self) -> int:
        """The committed position (0 for none)."""

    def seek(self, position: int) -> None:
        """Read after `position` from the next fetch on."""

    def lag(self, after: int | None = None) -> tuple[int, float]:
        """Records after the committed position (or after `after`, for a
        sink that keeps its own), counted by position (an upper bound where
        retention left gaps), and seconds since the oldest of them was
        received (0.0 when none)."""

    def wake(self) -> None:
        """End a waiting `fetch` early."""

    def close(self) -> None:
        """Release the subscription."""


class JournalReader(Protocol):
    """The read side of a journal: one subscription per named consumer."""

    def subscribe(self, consumer: str) -> Subscription:
        """A subscription that resumes after `consumer`'s committed position."""

    def head(self) -> int:
        """The position of the newest record (0 for an empty journal)."""

    def record(self, position: int) -> Record | None:
        """The record at `position`, or None (never there, or removed)."""


def take_bytes(records: Iterable[Record], max_bytes: int | None) -> list[Record]:
    """The records up to and including the one whose body brings the total
    to `max_bytes` (all of them when None): what a `fetch` returns."""
    if max_bytes is None:
        return list(records)
    taken, size = [], 0
    for record in records:
        taken.append(record)
        size += len(record.body)
        if size >= max_bytes:
            break
    return taken


def cut_short(records: list[Record], max_events: int, max_bytes: int | None) -> bool:
    """Whether a `fetch(max_events, max_bytes=max_bytes)` that returned
    `records` stopped at a limit (so more may wait), by `take_bytes`'s rule."""
    if len(records) >= max_events:
        return True
    return max_bytes is not None and sum(len(r.body) for r in records) >= max_bytes


def resolve(future: Future[Any], value: Any) -> None:
    """Set a result unless the waiter already gave up (cancelled the future)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


def fail(future: Future[Any], error: BaseException) -> None:
    """Set an exception unless the waiter already gave up."""
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)

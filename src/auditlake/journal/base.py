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
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, InvalidStateError
from typing import Any, Literal, Protocol

import msgspec

from auditlake.core.event import StoredEvent

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

    def sync(self) -> Future[None]:
        """Resolves once everything the journal holds now is processed."""

    def lag(self) -> int:
        """Events in the journal not processed yet."""

    def seconds_behind(self) -> float:
        """About how long processing the current lag takes at the recent
        rate; 0.0 while the rate is unknown."""

    def healthy(self) -> bool:
        """False once it has stopped."""

    def close(self) -> None:
        """Process what the journal holds, then stop."""


def resolve(future: Future[Any], value: Any) -> None:
    """Set a result unless the waiter already gave up (cancelled the future)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


def fail(future: Future[Any], error: BaseException) -> None:
    """Set an exception unless the waiter already gave up."""
    with contextlib.suppress(InvalidStateError):
        future.set_exception(error)

"""An in-memory journal and store in one object, for tests and experiments.

It honours the same contracts as the SQLite backends (the contract suites run
against both) but keeps nothing across processes. Appends resolve at once;
subscriptions read them as soon as they are appended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from auditlake.core.event import StoredEvent
from auditlake.core.query import Position, Query, matches
from auditlake.errors import Unavailable
from auditlake.journal.base import AppendResult, Record, take_bytes
from auditlake.journal.dedupe import Key, body_fingerprint, judge
from auditlake.store.base import Page


class MemoryEventLog:
    """`Journal`, `JournalReader` and `EventStore` over a Python list."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # seconds since the epoch, for the age in lag()
        self._rows: list[tuple[int, StoredEvent]] = []
        # Per stored key: its body, and its fingerprint once a send under
        # that key needed it (as the SQLite journal caches it).
        self._keys: dict[Key, bytes] = {}
        self._prints: dict[Key, bytes] = {}
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._positions: dict[str, int] = {}  # committed, per consumer
        self._running = False

    def start(self) -> None:
        """Begin accepting appends."""
        self._running = True

    def submit(
        self, events: list[StoredEvent], *, keep_first: bool = False
    ) -> Future[list[AppendResult]]:
        """Store the batch at once (exactly once by tenant and id, a conflict
        refused unless `keep_first`, as `journal.dedupe` says); its queue is
        never full."""
        if not self._running:
            raise Unavailable("the journal is not accepting writes")
        with self._lock:
            judged = judge(events, self._known, keep_first=keep_first)
            for index in judged.written:
                stored = events[index]
                self._keys[(stored.event.tenant, stored.event.id)] = stored.body
                self._rows.append((len(self._rows) + 1, stored))
            self._appended.notify_all()
        future: Future[list[AppendResult]] = Future()
        if judged.conflict is not None:
            future.set_exception(judged.conflict)
        else:
            future.set_result(judged.results)
        return future

    def _known(self, key: Key) -> bytes | None:
        body = self._keys.get(key)
        if body is None:
            return None
        if key not in self._prints:
            self._prints[key] = body_fingerprint(body)
        return self._prints[key]

    def pending(self) -> int:
        """Always 0: appends complete synchronously."""
        return 0

    def healthy(self) -> bool:
        """True between start() and close()."""
        return self._running

    def write_failure(self) -> str | None:
        """Always None: memory does not fill up the way a disk does."""
        return None

    def close(self) -> None:
        """Stop accepting appends (the data stays readable)."""
        self._running = False

    def get(self, tenant: str, event_id: str) -> bytes | None:
        """The stored JSON of one event, or None."""
        with self._lock:
            rows = list(self._rows)
        for _seq, stored in rows:
            if stored.event.tenant == tenant and stored.event.id == event_id:
                return stored.body
        return None

    def search(self, query: Query) -> Page:
        """Matching events in (occurred_at, seq) order after the cursor."""
        with self._lock:
            rows = [
                (stored.occurred_us, seq, stored)
                for seq, stored in self._rows
                if stored.event.tenant == query.tenant
                and matches(stored.event, stored.occurred_us, query.filters)
            ]
        descending = query.order == "desc"
        rows.sort(key=lambda row: (row[0], row[1]), reverse=descending)
        if query.after is not None:
            mark = (query.after.occurred_us, query.after.seq)
            rows = [r for r in rows if ((r[0], r[1]) < mark if descending else (r[0], r[1]) > mark)]
        page = rows[: query.limit]
        more = len(rows) > query.limit
        position = Position(page[-1][0], page[-1][1]) if more else None
        return Page([stored.body for _o, _s, stored in page], position)

    def ping(self) -> None:
        """Always answers."""

    def subscribe(self, consumer: str) -> MemorySubscription:
        """A subscription resuming after `consumer`'s committed position."""
        return MemorySubscription(self, consumer)

    def head(self) -> int:
        """The newest position (0 for none)."""
        with self._lock:
            return len(self._rows)

    def record(self, position: int) -> Record | None:
        """The record at `position`, or None."""
        with self._lock:
            if not 0 < position <= len(self._rows):
                return None
            stored = self._rows[position - 1][1]
        return Record(
            position, stored.received_us, stored.occurred_us, stored.event.tenant, stored.body
        )


class MemorySubscription:
    """`Subscription` of one consumer of a `MemoryEventLog`."""

    def __init__(self, log: MemoryEventLog, consumer: str) -> None:
        self.consumer = consumer
        self._log = log
        with log._lock:
            self._read_to = log._positions.get(consumer, 0)
        self._woken = False

    def fetch(
        self, max_events: int, max_wait: float = 0.0, max_bytes: int | None = None
    ) -> list[Record]:
        """Up to `max_events` records (and about `max_bytes`) after the last
        one fetched, waiting up to `max_wait` seconds for the first."""
        deadline = time.monotonic() + max_wait
        log = self._log
        with log._appended:
            self._woken = False
            while len(log._rows) <= self._read_to and not self._woken:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                log._appended.wait(left)  # woken: the loop looks once more
            rows = log._rows[self._read_to : self._read_to + max_events]
        records = take_bytes(
            (Record(seq, s.received_us, s.occurred_us, s.event.tenant, s.body) for seq, s in rows),
            max_bytes,
        )
        if records:
            self._read_to = records[-1].position
        return records

    def commit(self, position: int) -> None:
        """Keep `position` as committed; ValueError if it is below it."""
        with self._log._lock:
            committed = self._log._positions.get(self.consumer, 0)
            if position < committed:
                raise ValueError(
                    f"{self.consumer}: commit {position} is behind the committed {committed}"
                )
            self._log._positions[self.consumer] = position

    def committed(self) -> int:
        """The committed position (0 for none)."""
        with self._log._lock:
            return self._log._positions.get(self.consumer, 0)

    def seek(self, position: int) -> None:
        """Read after `position` from the next fetch on."""
        self._read_to = position

    def lag(self, after: int | None = None) -> tuple[int, float]:
        """Records after the committed position (or `after`), and the age of
        the oldest."""
        with self._log._lock:
            if after is None:
                after = self._log._positions.get(self.consumer, 0)
            waiting = self._log._rows[after:]
        if not waiting:
            return 0, 0.0
        return len(waiting), max(0.0, self._log._clock() - waiting[0][1].received_us / 1e6)

    def wake(self) -> None:
        """End a waiting fetch early."""
        with self._log._appended:
            self._woken = True
            self._log._appended.notify_all()

    def close(self) -> None:
        """Nothing to release."""

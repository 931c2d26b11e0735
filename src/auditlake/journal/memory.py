"""An in-memory journal and store in one object, for tests and experiments.

It honours the same contracts as the SQLite backends (the contract suites run
against both) but keeps nothing across processes. Appends resolve at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from auditlake.core.event import StoredEvent
from auditlake.core.query import Position, Query, matches
from auditlake.errors import Unavailable
from auditlake.journal.base import AppendResult
from auditlake.journal.dedupe import Key, body_fingerprint, judge
from auditlake.store.base import Page


class MemoryEventLog:
    """`Journal` and `EventStore` over a Python list."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, StoredEvent]] = []
        # Per stored key: its body, and its fingerprint once a send under
        # that key needed it (as the SQLite journal caches it).
        self._keys: dict[Key, bytes] = {}
        self._prints: dict[Key, bytes] = {}
        self._lock = threading.Lock()
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

"""The runtime of one service process: its running parts as Protocols (the
composition root, `app.py`, fills them in), started and closed in order,
with the one way in (`ingest`) and the metrics every part reports to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from auditlake.config import Settings
from auditlake.core.query import Query
from auditlake.ingest import Admission, Ingest
from auditlake.journal.base import Consumer, Journal
from auditlake.keys.base import KeyStore
from auditlake.lifecycle import Part
from auditlake.metrics import Metrics
from auditlake.store.base import EventStore, Page
from auditlake.work_limits import ClientSlots, WorkPools


class ConsumerView(Protocol):
    """What /metrics reads of one consumer."""

    name: str

    def lag(self) -> tuple[int, float]:
        """Events after its committed position, and the age of the oldest."""
        ...


class Consumers(Part, Protocol):
    """The consumers of the journal, run apart from the server's work."""

    @property
    def runners(self) -> Sequence[ConsumerView]:
        """One view per consumer."""
        ...


@dataclass
class Services:
    """The running backends of one service process."""

    settings: Settings
    journal: Journal
    store: EventStore
    keys: KeyStore
    metrics: Metrics = field(default_factory=Metrics)
    # Indexes the journal for search; None when the store is the journal itself.
    recorder: Consumer | None = None
    # Vendor APIs polled into the journal (started after it, stopped before it).
    pollers: Part | None = None
    # Followers of the journal with outputs of their own (the archiver), in a
    # child process; they flush after the journal has drained.
    consumers: Consumers | None = None
    # Removes events past their retention from the store (once archived).
    retention: Part | None = None
    # Worker threads by kind of work, and what one API key may hold at once.
    pools: WorkPools = field(init=False)
    slots: ClientSlots = field(init=False)
    # The one way events enter the journal, with the recorder's backpressure.
    ingest: Ingest = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.pools = WorkPools(settings.read_threads, settings.key_check_threads)
        self.slots = ClientSlots(settings.max_searches_per_key, settings.max_exports_per_key)
        self.ingest = Ingest(self.journal, self.metrics, admission(settings, self.recorder))

    def start(self) -> None:
        """Start the journal writer, then the recorder that follows it."""
        self.journal.start()
        if self.recorder is not None:
            self.recorder.start()
        if self.consumers is not None:
            self.consumers.start()
        if self.pollers is not None:
            self.pollers.start()
        if self.retention is not None:
            self.retention.start()

    async def wait_searchable(self) -> None:
        """Let a search see every event acknowledged before it, if that takes
        no longer than `search_wait_seconds`; otherwise search what is indexed."""
        if self.recorder is None:
            return
        waiting = asyncio.wrap_future(self.recorder.sync(self.journal.head()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting, self.settings.search_wait_seconds)

    async def search_page(self, query: Query) -> Page:
        """One page of `query`, on the read threads."""
        return await self.pools.read(self.store.search, query)

    def index_lag(self) -> int:
        """Events acknowledged but not yet searchable."""
        return 0 if self.recorder is None else self.recorder.lag()

    def close(self) -> None:
        """Stop the pollers, drain the journal, let the consumers flush and the
        recorder catch up, then release the read side and the keys."""
        if self.retention is not None:
            self.retention.close()
        if self.pollers is not None:
            self.pollers.close()
        self.journal.close()
        if self.consumers is not None:
            self.consumers.close()
        if self.recorder is not None:
            self.recorder.close()
        self.store.close()
        self.keys.close()


def admission(settings: Settings, recorder: Consumer | None) -> Admission:
    """The recorder's backpressure as `settings` bound it."""
    return Admission(
        recorder,
        max_lag_events=settings.max_index_lag_events,
        max_lag_seconds=settings.max_index_lag_seconds,
        wait_seconds=settings.admit_wait_seconds,
    )

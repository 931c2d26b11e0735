"""What the HTTP layer needs, as Protocols; the composition root fills it in."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from auditlake.config import Settings
from auditlake.journal.base import Consumer, Journal
from auditlake.keys.base import KeyStore
from auditlake.store.base import EventStore
from auditlake.web.metrics import Metrics


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

    def start(self) -> None:
        """Start the journal writer, then the recorder that follows it."""
        self.journal.start()
        if self.recorder is not None:
            self.recorder.start()

    async def wait_searchable(self) -> None:
        """Let a search see every event acknowledged before it, if that takes
        no longer than `search_wait_seconds`; otherwise search what is indexed."""
        if self.recorder is None:
            return
        waiting = asyncio.wrap_future(self.recorder.sync())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting, self.settings.search_wait_seconds)

    def index_lag(self) -> int:
        """Events acknowledged but not yet searchable."""
        return 0 if self.recorder is None else self.recorder.lag()

    def close(self) -> None:
        """Drain the journal, let the recorder catch up, then release the read side."""
        self.journal.close()
        if self.recorder is not None:
            self.recorder.close()
        self.store.close()

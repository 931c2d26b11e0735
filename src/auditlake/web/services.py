"""What the HTTP layer needs, as Protocols; the composition root fills it in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from auditlake.config import Settings
from auditlake.journal.base import Journal
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
    # Resolves once everything acknowledged so far is searchable (None: always is).
    searchable: Callable[[], Future[None]] | None = None
    # Events acknowledged but not yet searchable.
    index_lag: Callable[[], int] = lambda: 0

    def start(self) -> None:
        """Start the journal writer."""
        self.journal.start()

    async def wait_searchable(self) -> None:
        """Let a search see every event acknowledged before it, if that takes
        no longer than `search_wait_seconds`; otherwise search what is indexed."""
        if self.searchable is None:
            return
        waiting = asyncio.wrap_future(self.searchable())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting, self.settings.search_wait_seconds)

    def close(self) -> None:
        """Drain the journal, then release the read side."""
        self.journal.close()
        self.store.close()

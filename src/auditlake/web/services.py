"""What the HTTP layer needs, as Protocols; the composition root fills it in."""

from __future__ import annotations

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

    def start(self) -> None:
        """Start the journal writer."""
        self.journal.start()

    def close(self) -> None:
        """Drain the journal, then release the read side."""
        self.journal.close()
        self.store.close()

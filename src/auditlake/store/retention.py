"""Retention on a schedule: whatever a backend's retention is, one pass of
it runs every so often in a daemon thread."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class Retention(Protocol):
    """A backend's retention: one pass removes what its settings let leave."""

    def run_once(self) -> dict[str, int]:
        """One pass over every tenant; how many events each lost."""
        ...


class Keeper(Protocol):
    """Where retention is told to keep some events longer than their age
    allows (rehydrated ones)."""

    def keep(self, until_us: int, keys: list[tuple[str, str]]) -> None:
        """Keep the stored events of `keys` ((tenant, id); unknown ones are
        skipped) until `until_us` at least; durable on return."""
        ...

    def close(self) -> None:
        """Release what it holds."""
        ...


class RetentionRunner:
    """Runs a retention pass every `every_seconds` in a daemon thread."""

    def __init__(self, retention: Retention, every_seconds: float) -> None:
        self._retention = retention
        self._every = every_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; its first pass comes one interval after start."""
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the current chunk's transaction, if one is running."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                removed = self._retention.run_once()
            except Exception:  # nothing was half-removed: each chunk is one transaction
                log.exception("a retention pass failed; trying again next time")
                continue
            if removed:
                log.info("retention removed %s", removed)

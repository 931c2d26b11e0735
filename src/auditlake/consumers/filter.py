"""A consumer's filter: the step in front of its sink that keeps only the
events it is for (by tenant, action and source; each an exact value or a
prefix ending in `*`, the settings' one pattern rule, `core.patterns`)."""

from __future__ import annotations

import msgspec

from auditlake.consumers.sink import Batch
from auditlake.core.event import Event
from auditlake.core.patterns import matches_any


class EventFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which events a consumer takes; an empty list places no condition."""

    tenants: list[str] = []
    actions: list[str] = []
    sources: list[str] = []

    def keeps(self, event: Event) -> bool:
        """Whether `event` passes every non-empty condition."""
        return (
            (not self.tenants or matches_any(self.tenants, event.tenant))
            and (not self.actions or matches_any(self.actions, event.action))
            and (not self.sources or matches_any(self.sources, event.source))
        )

    def apply(self, batch: Batch) -> Batch:
        """The records of `batch` whose events pass; it still covers the
        journal through `batch.end` (what was dropped is done with)."""
        kept = [(r, e) for r, e in batch.decoded() if self.keeps(e)]  # only these are kept
        return Batch([r for r, _ in kept], end=batch.end, events=[e for _, e in kept])

"""The store: the queryable copy of accepted events.

Backends return events as their stored JSON bytes, so the API can send them
without decoding and re-encoding. Reads are safe from any thread.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from auditlake.core.query import Position, Query


class Page(msgspec.Struct, frozen=True):
    """One page of search results, and where the next page starts (if any)."""

    events: list[bytes]
    next_position: Position | None


class EventStore(Protocol):
    """Read access to stored events, always scoped to one tenant."""

    def get(self, tenant: str, event_id: str) -> bytes | None:
        """The stored JSON of one event, or None."""

    def search(self, query: Query) -> Page:
        """The events matching `query`, in its order, at most `query.limit`."""

    def ping(self) -> None:
        """Raise if the backend cannot answer reads."""

    def close(self) -> None:
        """Release connections."""

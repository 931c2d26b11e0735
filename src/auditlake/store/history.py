"""One history across the hot store and the lake.

Retention removes a tenant's events older than its horizon (now minus its
retention) from the store once the lake has them, so a search is split at
the horizon: the store answers for events at or after it, the lake for
events before it. Pages walk the parts in the search's order (newest first:
store, then lake; oldest first: lake, then store), and every cursor carries
the horizon it started with, so the split stays put while a client pages.

An event older than the horizon that arrived within the archiver's batch
time is in the store but not yet in the lake: such a search finds it once it
is archived.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import msgspec

from auditlake.config import RetentionSettings
from auditlake.core.query import Position, Query
from auditlake.lake.reader import LakePosition, LakeReader
from auditlake.store.base import EventStore, Page

DAY_US = 86_400 * 1_000_000
Part = Literal["store", "lake"]
_encode = msgspec.json.encode


class HistoryStore:
    """`EventStore` that reads the lake for what retention removed."""

    def __init__(
        self,
        hot: EventStore,
        lake: LakeReader,
        policy: RetentionSettings,
        *,
        now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self._hot, self._lake, self._policy, self._now_us = hot, lake, policy, now_us

    def get(self, tenant: str, event_id: str) -> bytes | None:
        """The stored JSON of one event still in the store, or None."""
        return self._hot.get(tenant, event_id)

    def search(self, q: Query) -> Page:
        """One page, from the store, the lake or both."""
        days = self._policy.days_for(q.tenant)
        if not days:
            return self._hot.search(q)
        after = q.after
        horizon = (
            after.horizon_us
            if after is not None and after.horizon_us is not None
            else self._now_us() - days * DAY_US
        )
        parts = [p for p in _order(q) if _needed(p, q, horizon)]
        current = "store" if after is None or after.lake_id is None else "lake"
        if after is not None and current in parts:
            parts = parts[parts.index(current) :]
        events: list[bytes] = []
        for n, part in enumerate(parts):
            position = after if part == current else None
            found, next_position = self._read(part, q, position, q.limit - len(events), horizon)
            events += found
            if next_position is not None:
                return Page(events, next_position)
            if len(events) == q.limit:
                following = parts[n + 1 :]
                return Page(events, _start_of(following[0], horizon) if following else None)
        return Page(events, None)

    def _read(
        self, part: Part, q: Query, at: Position | None, limit: int, horizon: int
    ) -> tuple[list[bytes], Position | None]:
        if part == "store":
            since = max(q.filters.since_us or horizon, horizon)
            hot_q = msgspec.structs.replace(
                q,
                filters=msgspec.structs.replace(q.filters, since_us=since),
                limit=limit,
                after=None if at is None else Position(at.occurred_us, at.seq),
            )
            page = self._hot.search(hot_q)
            moved = page.next_position
            return page.events, (
                None if moved is None else Position(moved.occurred_us, moved.seq, None, horizon)
            )
        lake_after = None if at is None else LakePosition(at.occurred_us, at.lake_id or "")
        lake_q = msgspec.structs.replace(q, limit=limit, after=None)
        lake_page = self._lake.search(lake_q, after=lake_after, before_us=horizon)
        got = lake_page.next_after
        return [_encode(e) for e in lake_page.events], (
            None if got is None else Position(got.occurred_us, 0, got.id, horizon)
        )

    def ping(self) -> None:
        """Raise if the store cannot answer reads."""
        self._hot.ping()

    def close(self) -> None:
        """Release the store's connections."""
        self._hot.close()


def _order(q: Query) -> list[Part]:
    return ["store", "lake"] if q.order == "desc" else ["lake", "store"]


def _needed(part: Part, q: Query, horizon: int) -> bool:
    f = q.filters
    if part == "store":
        return f.until_us is None or f.until_us > horizon
    return f.since_us is None or f.since_us < horizon


def _start_of(part: Part, horizon: int) -> Position:
    """A cursor that starts `part` from its beginning: newest first, the lake
    begins below (horizon, ""); oldest first, the store begins after (horizon, 0)."""
    return Position(horizon, 0, "" if part == "lake" else None, horizon)

"""A base for test doubles of an event store: every call goes to the real
store, so a double overrides only the call it changes (a slow search, a
failing one, a ping that hangs)."""

from __future__ import annotations

from auditlake.core.query import Query
from auditlake.store.base import EventStore, Page


class StoreWrapper:
    """Forwards every `EventStore` call to `inner`."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    def search(self, query: Query) -> Page:
        return self.inner.search(query)

    def get(self, tenant: str, event_id: str) -> bytes | None:
        return self.inner.get(tenant, event_id)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

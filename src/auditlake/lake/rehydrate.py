"""Rehydrate: bring a window of lake events back into the hot store.

Events go through the journal like any other write, so they are stored at
most once per (tenant, id): what is still in the store comes back as a
duplicate, and a second run over the same window changes nothing. Each
rehydrated event is marked to stay `rehydrated_days` in the store whatever
its age (`kept_until`), after which retention removes it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgspec

from auditlake.core.event import Event, StoredEvent, to_micros
from auditlake.core.query import Filters, Query
from auditlake.ingest import Ingest
from auditlake.lake.objects import ObjectStore
from auditlake.lake.paths import tenant_of_folder
from auditlake.lake.reader import LakePosition, LakeReader
from auditlake.store.retention import Keeper

PAGE = 1000
LABEL = "rehydrate"  # the source its events are counted under
_encode = msgspec.json.encode


class Rehydrated(msgspec.Struct):
    """What a rehydration did."""

    read: int = 0
    created: int = 0
    duplicates: int = 0


def lake_tenants(objects: ObjectStore) -> list[str]:
    """The tenants that have files in the lake (in either layout, see
    `lake.paths`), from one listing of the lake's top folders."""
    found = {tenant_of_folder(folder) for folder in objects.folders("")}
    return sorted(t for t in found if t is not None)


def rehydrate(
    objects: ObjectStore,
    ingest: Ingest,
    keeper: Keeper,
    tenants: list[str],
    window: tuple[int, int],
    keep_until_us: int,
    on_page: Callable[[int], None] = lambda _n: None,
) -> Rehydrated:
    """Append the lake's events of `tenants` in [since, until) to the journal
    (through `ingest`, waiting while its admission says search indexing is
    behind: a CLI run has no recorder to wait for) and ask retention
    (`keeper`) to keep them until `keep_until_us`."""
    done = Rehydrated()
    reader = LakeReader(objects)
    for tenant in tenants:
        for events in _pages(reader, tenant, window):
            stored = [_stored(e) for e in events]
            # The journal's copy is the original: a lake copy that differs
            # (`conflict`) leaves it as it is, like a duplicate.
            ingest.admission.wait_blocking()
            results = ingest.submit(LABEL, stored, keep_first=True).result(timeout=120)
            done.read += len(events)
            done.created += sum(r.status == "created" for r in results)
            done.duplicates += sum(r.status != "created" for r in results)
            keeper.keep(keep_until_us, [(e.tenant, e.id) for e in events])
            on_page(len(events))
    return done


def _pages(reader: LakeReader, tenant: str, window: tuple[int, int]) -> Iterator[list[Event]]:
    search = Query(tenant, Filters(since_us=window[0], until_us=window[1]), "asc", PAGE)
    after: LakePosition | None = None
    while True:
        page = reader.search(search, after=after)
        if page.events:
            yield page.events
        if page.next_after is None:
            return
        after = page.next_after


def _stored(event: Event) -> StoredEvent:
    return StoredEvent(
        event, _encode(event), to_micros(event.occurred_at), to_micros(event.received_at)
    )

"""The archiver: a journal consumer whose output is the lake.

Each batch is grouped by partition (tenant and event hour); each partition
file is read, merged with the batch's rows (unique by id) and written back
with a conditional put, retried from the read when another writer got there
first. So a crash after some partitions, a redelivered batch, late events
for an hour already archived, or two archivers on the same partition all end
with every event in its hour's file exactly once.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from auditlake.core.event import Event, to_micros
from auditlake.errors import Unavailable
from auditlake.lake.layout import HOUR_US, merge, partition_path
from auditlake.lake.objects import ObjectStore

log = logging.getLogger(__name__)
MAX_CONFLICTS = 20


class Archiver:
    """`Sink` writing events into Parquet partitions of an object store."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.rows_written = 0

    def write(self, events: list[Event]) -> None:
        """Merge `events` into their partitions; durable on return."""
        by_hour: dict[tuple[str, int], list[Event]] = defaultdict(list)
        for event in events:  # a cheap key per event; the path once per partition
            by_hour[event.tenant, to_micros(event.occurred_at) // HOUR_US].append(event)
        by_partition = {
            partition_path(tenant, group[0].occurred_at): group
            for (tenant, _hour), group in by_hour.items()
        }
        for path in sorted(by_partition):
            self._merge_into(path, by_partition[path])

    def _merge_into(self, path: str, events: list[Event]) -> None:
        for _attempt in range(MAX_CONFLICTS):
            current = self.objects.get(path)
            data, added = merge(current[0] if current else None, events)
            if not added:
                return  # all there already (a redelivered batch)
            if self.objects.put(path, data, current[1] if current else None):
                self.rows_written += added
                return
            log.info("%s changed while merging; merging again", path)
        raise Unavailable(f"{path} kept changing under {MAX_CONFLICTS} merges; retrying later")

"""The archiver: a journal consumer whose output is the lake.

Each batch is grouped by partition (tenant and event hour); each partition
file is read, merged with the batch's rows (unique by id) and written back
with a conditional put, retried from the read when another writer got there
first. So a crash after some partitions, a redelivered batch, late events
for an hour already archived, or two archivers on the same partition all end
with every event in its hour's file exactly once.

Before its first batch, an archiver moves the files of the legacy layout
(`tenant=<t>/...`, see `lake.paths`) into the layout (`lake.migrate`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import partial

from auditlake.core.event import Event, to_micros
from auditlake.lake.layout import HOUR_US, merge, merge_into
from auditlake.lake.migrate import migrate_layout
from auditlake.lake.objects import ObjectStore
from auditlake.lake.paths import partition_path

log = logging.getLogger(__name__)


class Archiver:
    """`Sink` writing events into Parquet partitions of an object store."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.rows_written = 0
        self._layout_checked = False

    def write(self, events: list[Event]) -> None:
        """Merge `events` into their partitions; durable on return. The first
        call moves a legacy lake first (an error there fails the call, and
        the batch is tried again)."""
        if not self._layout_checked:
            moved = migrate_layout(self.objects)
            if moved.files:
                log.info("moved %d files into the lake's layout", moved.files)
            self._layout_checked = True
        by_hour: dict[tuple[str, int], list[Event]] = defaultdict(list)
        for event in events:  # a cheap key per event; the path once per partition
            by_hour[event.tenant, to_micros(event.occurred_at) // HOUR_US].append(event)
        by_partition = {
            partition_path(tenant, group[0].occurred_at): group
            for (tenant, _hour), group in by_hour.items()
        }
        for path in sorted(by_partition):
            self.rows_written += merge_into(
                self.objects, path, partial(merge, events=by_partition[path])
            )

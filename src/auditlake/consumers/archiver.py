"""The archiver: a journal consumer whose output is the lake.

Each batch is grouped by partition (tenant and event hour); each partition
file is read, merged with the batch's rows (unique by id) and written back
with a conditional put, retried from the read when another writer got there
first. So a crash after some partitions, a redelivered batch, late events
for an hour already archived, or two archivers on the same partition all end
with every event in its hour's file exactly once.

Before its first batch, an archiver moves the files of the legacy layout
(`tenant=<t>/...`, see `lake.paths`) into the layout (`lake.migrate`), and
again before a batch once `migrate_seconds` have passed since the last move:
an older version still writing during the upgrade leaves no file behind for
long. A later move that fails is logged and tried at the next interval; the
batch is written anyway (`LakeReader` reads both layouts meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial

from auditlake.consumers.sink import Batch
from auditlake.core.event import Event, to_micros
from auditlake.errors import AuditlakeError
from auditlake.lake.layout import HOUR_US, merge, merge_into
from auditlake.lake.migrate import migrate_layout
from auditlake.lake.objects import ObjectStore
from auditlake.lake.paths import partition_path

log = logging.getLogger(__name__)
# How often a running archiver moves legacy files again (seconds).
MIGRATE_SECONDS = 300.0


class Archiver:
    """`Sink` writing events into Parquet partitions of an object store."""

    def __init__(
        self,
        objects: ObjectStore,
        *,
        migrate_seconds: float = MIGRATE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objects = objects
        self.rows_written = 0
        self._migrate_seconds = migrate_seconds
        self._clock = clock
        self._migrated_at: float | None = None  # clock() of the last move

    def write(self, batch: Batch) -> None:
        """`archive` the batch (the `Sink` side), one partition at a time: its
        records are grouped by tenant and hour before any is decoded, so the
        batch never holds every decoded event at once."""
        self._archive(((r.tenant, r.occurred_us) for r in batch.records), batch.event)

    def archive(self, events: list[Event]) -> None:
        """Merge `events` into their partitions; durable on return. The first
        call moves a legacy lake first (an error there fails the call, and
        the batch is tried again); later calls move again every
        `migrate_seconds` (an error there is logged)."""
        keys = ((e.tenant, to_micros(e.occurred_at)) for e in events)
        self._archive(keys, events.__getitem__)

    def _archive(self, keys: Iterable[tuple[str, int]], event: Callable[[int], Event]) -> None:
        """Merge the events whose (tenant, occurred_us) are `keys`, in order,
        one partition (tenant and hour) at a time; `event(i)` gives the i-th."""
        self.migrate_if_due()
        by_hour: dict[tuple[str, int], list[int]] = defaultdict(list)
        for index, (tenant, occurred_us) in enumerate(keys):
            by_hour[tenant, occurred_us // HOUR_US].append(index)
        for key in sorted(by_hour):
            self._merge([event(index) for index in by_hour.pop(key)])

    def _merge(self, partition: list[Event]) -> None:
        """Merge one partition's events (one tenant, one hour) into its file."""
        path = partition_path(partition[0].tenant, partition[0].occurred_at)
        self.rows_written += merge_into(self.objects, path, partial(merge, events=partition))

    def migrate_if_due(self) -> None:
        """Move legacy files into the layout if it has not been done yet in
        this process, or not for `migrate_seconds`."""
        now = self._clock()
        first = self._migrated_at is None
        if self._migrated_at is not None and now - self._migrated_at < self._migrate_seconds:
            return
        try:
            moved = migrate_layout(self.objects, whole_lake=first)
        except AuditlakeError as exc:
            if first:
                raise
            log.warning("moving legacy lake files failed (%s); trying again later", exc)
            self._migrated_at = now
            return
        self._migrated_at = now
        if moved.files or moved.leftovers:
            log.info(
                "moved %d files into the lake's layout; removed %d leftovers of older versions",
                moved.files,
                moved.leftovers,
            )

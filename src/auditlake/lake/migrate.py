"""Move a lake written in the legacy layout into the layout (`lake.paths`):
`tenant=<t>/year=YYYY/month=MM/...` becomes `<t>/year=Y/month=M/...`.

Each legacy partition file is merged into the file of the same tenant and
hour in the layout (unique by id, with the archiver's conditional put), and
only then deleted, and only if it did not change since it was read. So
every event stays readable exactly once by `LakeReader` whenever a crash
stops the move:

- before the merge lands, the legacy file alone holds the rows;
- between the merge and the delete, both files hold them: `LakeReader`
  reads a tenant's hour from both layouts and keeps each id once, and the
  next run merges nothing new and deletes the legacy file;
- a run over a lake with no legacy file lists one folder and does nothing.

Other readers (DuckDB, pyarrow) see such a file's rows twice until the next
run; the archiver runs this before its first batch.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import msgspec

from auditlake.errors import Unavailable
from auditlake.lake.layout import MAX_CONFLICTS, merge_into, merge_table, read_table
from auditlake.lake.objects import ObjectStore
from auditlake.lake.paths import LEGACY_PREFIX, moved_path

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


class Migrated(msgspec.Struct):
    """What a migration did."""

    files: int = 0  # legacy files moved and deleted
    rows: int = 0  # rows that were not yet in the layout's files
    unreadable: list[str] = msgspec.field(default_factory=list)  # left where they are


def migrate_layout(objects: ObjectStore) -> Migrated:
    """Move every legacy partition file of `objects` into the layout.

    Idempotent and safe to run in several processes at once. Anything in a
    legacy folder that is not a partition file, or not a Parquet file of the
    lake, stays where it is (named in `unreadable` when it should have been
    one). Raises Unavailable when the store fails or a file kept changing.
    """
    done = Migrated()
    for folder in objects.folders(""):
        if folder.startswith(LEGACY_PREFIX):
            for path in objects.list(f"{folder}/"):
                _move(objects, path, done)
    return done


def _move(objects: ObjectStore, path: str, done: Migrated) -> None:
    """Merge one legacy file into its place in the layout, then delete it."""
    target = moved_path(path)
    if target is None:
        return  # not a partition file: not the archiver's
    for _attempt in range(MAX_CONFLICTS):
        stored = objects.get(path)
        if stored is None:
            return  # moved by another process meanwhile
        try:
            rows = read_table(stored[0])
        except (ValueError, TypeError, OSError) as exc:  # pyarrow's errors for a bad file
            log.warning("%s is no lake file (%s); left where it is", path, type(exc).__name__)
            done.unreadable.append(path)
            return
        done.rows += merge_into(objects, target, partial(_merged, stored[0], rows))
        if objects.delete(path, stored[1]):
            done.files += 1
            return
        log.info("%s changed while it was moved; moving it again", path)
    raise Unavailable(f"{path} kept changing under {MAX_CONFLICTS} moves; retrying later")


def _merged(legacy: bytes, rows: pa.Table, existing: bytes | None) -> tuple[bytes, int]:
    """The layout's file with the legacy file's rows; the legacy file as it
    is when there is none yet (about a fifth of the move's time saved)."""
    return (legacy, rows.num_rows) if existing is None else merge_table(existing, rows)

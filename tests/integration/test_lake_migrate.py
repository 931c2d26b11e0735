"""Moving a lake of the legacy layout (`tenant=<t>/year=YYYY/month=MM/...`)
into the layout (`<t>/year=Y/month=M/...`), on a local folder and on S3 (a
moto server): every event ends in the layout exactly once, nothing else is
touched, a second run changes nothing, and a crash at any write of the move
leaves every event readable exactly once through `LakeReader`."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow.dataset as ds
import pytest
from tests.integration.test_lake_objects import Wrapped, _s3, s3_endpoint  # noqa: F401 (a fixture)

from auditlake.consumers.archiver import Archiver
from auditlake.core.event import Event
from auditlake.core.query import Filters, Query
from auditlake.errors import Unavailable
from auditlake.lake.layout import merge, read_rows
from auditlake.lake.migrate import Migrated, migrate_layout
from auditlake.lake.objects import LocalObjects, ObjectStore
from auditlake.lake.paths import partition_path
from auditlake.lake.reader import LakeReader
from auditlake.lake.rehydrate import lake_tenants

START = datetime(2026, 1, 9, 22, 0, tzinfo=UTC)  # hours 22, 23 and 0 of the next day
TENANTS = ("acme", "123", "a:b")
NOTES = "tenant=acme/notes.txt"  # not a partition file: stays
# No Parquet: stays (in a tenant of its own: LakeReader fails on such a file).
JUNK = "tenant=zz/year=2026/month=03/day=01/hour=00/events.parquet"


def event(tenant: str, event_id: str, at: datetime) -> Event:
    return Event(id=event_id, tenant=tenant, action="doc.viewed", occurred_at=at,
                 received_at=at, source="api", caller="key:k")  # fmt: skip


def legacy_path(tenant: str, at: datetime) -> str:
    return (
        f"tenant={quote(tenant, safe='')}/year={at.year:04d}/month={at.month:02d}/"
        f"day={at.day:02d}/hour={at.hour:02d}/events.parquet"
    )


def legacy_lake(objects: ObjectStore) -> list[Event]:
    """Three tenants' hours in the legacy layout, one hour of acme also in the
    layout already (an id in both, ids in either), and two files that are no
    partitions. Returns every event the lake holds."""
    events = [
        event(t, f"{t}-{h}-{n}", START + timedelta(hours=h, minutes=n))
        for t in TENANTS for h in range(3) for n in range(4)
    ]  # fmt: skip
    for path, group in by_path(events, legacy_path).items():
        assert objects.put(path, merge(None, group)[0], None)
    hour = START + timedelta(hours=1)
    newer = [event("acme", "acme-1-0", hour), event("acme", "acme-new", hour)]
    assert objects.put(partition_path("acme", hour), merge(None, newer)[0], None)
    assert objects.put(NOTES, b"notes", None)
    assert objects.put(JUNK, b"not parquet", None)
    return [*events, newer[1]]


def by_path(events: list[Event], path_of: object) -> dict[str, list[Event]]:
    groups: dict[str, list[Event]] = {}
    for e in events:
        groups.setdefault(path_of(e.tenant, e.occurred_at), []).append(e)  # type: ignore[operator]
    return groups


def in_layout(objects: ObjectStore) -> Counter[tuple[str, str]]:
    """(tenant, id) of every row of the layout's files, with repeats."""
    found: Counter[tuple[str, str]] = Counter()
    for folder in objects.folders(""):
        if not folder.startswith("tenant="):
            for path in objects.list(folder):
                stored = objects.get(path)
                assert stored is not None
                found.update((r["tenant"], r["id"]) for r in read_rows(stored[0]))
    return found


def legacy_files(objects: ObjectStore) -> list[str]:
    return [p for p in objects.list("") if p.startswith("tenant=")]


def read_back(objects: ObjectStore) -> Counter[tuple[str, str]]:
    """(tenant, id) of what `LakeReader` returns for every tenant, with repeats."""
    reader = LakeReader(objects)
    found: Counter[tuple[str, str]] = Counter()
    for tenant in TENANTS:
        found.update(
            (e.tenant, e.id) for e in reader.search(Query(tenant, Filters(), "asc", 500)).events
        )
    return found


def once(events: list[Event]) -> Counter[tuple[str, str]]:
    return Counter((e.tenant, e.id) for e in events)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjects(tmp_path / "lake")
    return _s3(request.getfixturevalue("s3_endpoint"))


def test_a_legacy_lake_moves_into_the_layout_once(store: ObjectStore) -> None:
    events = legacy_lake(store)
    assert lake_tenants(store) == sorted([*TENANTS, "zz"])
    assert read_back(store) == once(events)  # before: both layouts read, each id once
    done = migrate_layout(store)
    assert done == Migrated(files=9, rows=len(events) - 2, unreadable=[JUNK])
    assert in_layout(store) == once(events)
    assert legacy_files(store) == [NOTES, JUNK]  # what is no lake file stays
    assert read_back(store) == once(events)
    assert lake_tenants(store) == sorted([*TENANTS, "zz"])
    tags = {path: store.get(path) for path in store.list("")}
    assert migrate_layout(store) == Migrated(unreadable=[JUNK])  # idempotent
    assert {path: store.get(path) for path in store.list("")} == tags


def test_the_archivers_first_batch_moves_the_legacy_lake(store: ObjectStore) -> None:
    events = legacy_lake(store)
    fresh = [event("acme", "fresh", START), event("zeta", "z", START)]
    archiver = Archiver(store)
    archiver.archive(fresh)
    assert in_layout(store) == once(events + fresh)
    assert legacy_files(store) == [NOTES, JUNK]
    assert archiver.rows_written == 2
    archiver.archive([event("acme", "later", START)])  # moved once per archiver
    assert in_layout(store)[("acme", "later")] == 1


class Crash(Exception):
    """A process dying at this call."""


class CrashAt(Wrapped):
    """Dies at the `at`-th write or delete (counting from 0)."""

    def __init__(self, inner: ObjectStore, at: int) -> None:
        super().__init__(inner)
        self.at, self.calls = at, 0

    def _tick(self) -> None:
        self.calls += 1
        if self.calls - 1 == self.at:
            raise Crash

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        self._tick()
        return self.inner.put(path, data, expected)

    def delete(self, path: str, expected: str) -> bool:
        self._tick()
        return self.inner.delete(path, expected)


def test_a_crash_at_any_write_of_the_move_leaves_every_event_readable_once(
    tmp_path: Path,
) -> None:
    at = 0
    while True:
        objects = LocalObjects(tmp_path / f"lake-{at}")
        events = legacy_lake(objects)
        try:
            migrate_layout(CrashAt(objects, at))
        except Crash:
            assert read_back(objects) == once(events), f"after a crash at write {at}"
            migrate_layout(objects)  # the next start finishes the move
            assert in_layout(objects) == once(events)
            assert legacy_files(objects) == [NOTES, JUNK]
            at += 1
            continue
        break
    assert at == 18  # 9 files, each merged and then deleted


def test_a_crash_between_the_merge_and_the_delete_on_each_backend(store: ObjectStore) -> None:
    events = legacy_lake(store)
    with pytest.raises(Crash):
        migrate_layout(CrashAt(store, 1))  # the first file's merge landed, its delete did not
    assert len(legacy_files(store)) == 11  # nothing deleted yet
    assert sum(in_layout(store).values()) == 4 + 2  # the first hour, and acme's second
    assert read_back(store) == once(events)
    assert migrate_layout(store).files == 9
    assert in_layout(store) == once(events)


class LegacyWriter(Wrapped):
    """An archiver of an older version adding a row to a legacy file while
    it is being moved (just before the first delete)."""

    def __init__(self, inner: ObjectStore, late: Event) -> None:
        super().__init__(inner)
        self.late: Event | None = late

    def delete(self, path: str, expected: str) -> bool:
        if self.late is not None:
            stored = self.inner.get(path)
            assert stored is not None
            assert self.inner.put(path, merge(stored[0], [self.late])[0], stored[1])
            self.late = None
        return self.inner.delete(path, expected)


def test_a_legacy_file_changed_during_its_move_is_moved_again(store: ObjectStore) -> None:
    events = legacy_lake(store)
    late = event("123", "late", START)
    done = migrate_layout(LegacyWriter(store, late))
    assert done.files == 9
    assert in_layout(store) == once([*events, late])


class MoveWhileListing(Wrapped):
    """Moves the lake right after a reader lists one of the tenant's folders."""

    def __init__(self, inner: ObjectStore, after: str) -> None:
        super().__init__(inner)
        self.after = after

    def list(self, prefix: str) -> list[str]:
        found = self.inner.list(prefix)
        if prefix.startswith(self.after):
            migrate_layout(self.inner)
        return found


@pytest.mark.parametrize("after", ["tenant=", "acme/"])
def test_a_search_while_the_lake_moves_sees_every_event_once(tmp_path: Path, after: str) -> None:
    objects = LocalObjects(tmp_path / "lake")
    events = legacy_lake(objects)
    mine = [e for e in events if e.tenant == "acme"]
    page = LakeReader(MoveWhileListing(objects, after)).search(Query("acme", Filters(), "asc", 99))
    assert once(page.events) == once(mine)
    assert legacy_files(objects) == [NOTES, JUNK]  # it did move meanwhile


def _old_versions_leftovers(root: Path) -> None:
    """What versions before `.locks` left among the data files: a lock file in
    every folder they wrote, and a temp file of a crash."""
    for folder in [p for p in root.rglob("*") if p.is_dir() and ".locks" not in p.parts]:
        (folder / ".lock").touch()
    crashed = root / "tenant=acme/year=2026/month=01/day=09/hour=22/.tmp-x.part"
    crashed.touch()
    os.utime(crashed, (0, 0))


def test_after_archiving_and_moving_the_lake_holds_only_parquet_files(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    objects = LocalObjects(root)
    events = legacy_lake(objects)
    for path in (NOTES, JUNK):  # no lake files: a user's, they would stay
        stored = objects.get(path)
        assert stored is not None and objects.delete(path, stored[1])
    _old_versions_leftovers(root)
    fresh = [event("acme", "fresh", START), event("Acme", "capital", START)]
    Archiver(objects).archive(fresh)
    data = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if ".locks" not in p.parts
    )
    assert [p for p in data if not p.endswith(".parquet") and "=" not in p.rsplit("/", 1)[-1]] == [
        "%41cme", "123", "a%3Ab", "acme"
    ]  # fmt: skip
    assert all(p.endswith("/events.parquet") for p in data if "." in p.rsplit("/", 1)[-1])
    assert not any(p.startswith("tenant=") for p in data)  # the old folders went
    # The readers' natural forms: a glob of a tenant's folder, a dataset of the lake.
    acme = duckdb.sql(f"SELECT id FROM read_parquet('{root.as_posix()}/acme/**')").fetchall()
    assert sorted(i for (i,) in acme) == sorted(
        e.id for e in [*events, *fresh] if e.tenant == "acme"
    )
    lake = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert lake.num_rows == len(events) + len(fresh)
    assert read_back(objects) == once([e for e in [*events, *fresh] if e.tenant in TENANTS])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_archiver_moves_legacy_files_again_every_interval(store: ObjectStore) -> None:
    clock = Clock()
    archiver = Archiver(store, migrate_seconds=300, clock=clock)
    archiver.archive([event("acme", "first", START)])
    late = event("acme", "late-legacy", START)  # an older version, still running
    assert store.put(legacy_path("acme", START), merge(None, [late])[0], None)
    clock.now = 299
    archiver.archive([event("acme", "second", START)])
    assert len(legacy_files(store)) == 1  # not yet: a move costs a listing
    clock.now = 300
    archiver.archive([event("acme", "third", START)])
    assert legacy_files(store) == []
    assert set(in_layout(store)) == {
        ("acme", i) for i in ("first", "second", "third", "late-legacy")
    }


class FailingMoves(Wrapped):
    """A store whose listing of folders fails (so a move fails) while `down`."""

    down = False

    def folders(self, prefix: str) -> list[str]:
        if self.down:
            raise Unavailable("the store is down for listing")
        return self.inner.folders(prefix)


def test_a_later_move_that_fails_does_not_stop_archiving(tmp_path: Path) -> None:
    clock = Clock()
    store = FailingMoves(LocalObjects(tmp_path / "lake"))
    archiver = Archiver(store, migrate_seconds=60, clock=clock)
    store.down = True
    with pytest.raises(Unavailable):  # the first move must succeed before any batch
        archiver.archive([event("acme", "a", START)])
    store.down = False
    archiver.archive([event("acme", "a", START)])
    store.down, clock.now = True, 60
    archiver.archive([event("acme", "b", START)])  # logged, tried again later
    assert set(in_layout(store.inner)) == {("acme", "a"), ("acme", "b")}


def test_a_legacy_file_written_after_the_move_is_found_at_once(store: ObjectStore) -> None:
    # An older version writing during the upgrade: its file must never be
    # hidden from a reader that has seen the tenant's layout alone before.
    reader = LakeReader(store)
    Archiver(store).archive([event("acme", "new", START)])
    assert [e.id for e in reader.search(Query("acme", Filters(), "asc", 10)).events] == ["new"]
    late = event("acme", "late-legacy", START + timedelta(minutes=1))
    assert store.put(legacy_path("acme", START), merge(None, [late])[0], None)
    page = reader.search(Query("acme", Filters(), "asc", 10))
    assert [e.id for e in page.events] == ["new", "late-legacy"]

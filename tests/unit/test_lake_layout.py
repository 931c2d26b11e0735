"""The lake's file layout: partition paths, the schema, and the merge."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditlake.core.event import Actor, Context, ErrorInfo, Event, Target, to_micros
from auditlake.lake.layout import (
    SCHEMA_VERSION,
    arrow_schema,
    merge,
    read_rows,
    read_table,
    unique_rows,
)
from auditlake.lake.paths import (
    hour_start,
    legacy_tenant_folder,
    moved_path,
    partition_path,
    tenant_folder,
    tenant_of_folder,
)

T = datetime(2026, 11, 20, 10, 15, 30, 123456, tzinfo=UTC)


def event(event_id: str, at: datetime = T, **fields: object) -> Event:
    return Event(
        id=event_id, tenant="acme", action="user.signed_in", occurred_at=at,
        received_at=T, source="api", caller="key:k", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_partition_path_is_the_tenant_folder_then_the_unpadded_utc_hour() -> None:
    local = T.astimezone(timezone(timedelta(hours=-5)))
    assert partition_path("acme", local) == "acme/year=2026/month=11/day=20/hour=10/events.parquet"
    early = datetime(2026, 1, 2, 0, 59, tzinfo=UTC)
    assert partition_path("123", early) == "123/year=2026/month=1/day=2/hour=0/events.parquet"
    assert partition_path("a:b", T).startswith("a%3Ab/year=2026/")


def test_merge_keeps_each_id_once_sorted_by_time_with_typed_columns() -> None:
    full = event(
        "e2", T + timedelta(minutes=1),
        actor=Actor(id="u1", type="user", name="Ada", metadata={"plan": "pro"}),
        targets=[Target(id="t1", type="team", metadata={"size": 3})],
        context=Context(location="203.0.113.7", user_agent="curl"),
        error=ErrorInfo(code="E1", message="nope"), outcome="failure",
        metadata={"k": "v"}, raw={"vendor": [1, 2]},
    )  # fmt: skip
    data, added = merge(None, [full, event("e1")])
    assert added == 2
    again, added_again = merge(data, [event("e1"), event("e0", T - timedelta(seconds=5))])
    assert added_again == 1
    rows = read_rows(again)
    assert [r["id"] for r in rows] == ["e0", "e1", "e2"]
    e2 = rows[2]
    assert e2["occurred_at"] == T + timedelta(minutes=1)
    assert (e2["actor_id"], e2["actor_metadata"], e2["outcome"]) == (
        "u1",
        '{"plan":"pro"}',
        "failure",
    )
    assert e2["targets"] == [{"id": "t1", "type": "team", "name": None, "metadata": '{"size":3}'}]
    assert (e2["error_code"], e2["metadata"], e2["raw"]) == ("E1", '{"k":"v"}', '{"vendor":[1,2]}')
    parquet = pq.ParquetFile(io.BytesIO(again))
    assert parquet.schema_arrow.metadata[b"auditlake.schema_version"] == SCHEMA_VERSION.encode()
    assert parquet.schema_arrow.equals(arrow_schema(), check_metadata=False)
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"


def test_merging_only_known_ids_adds_nothing() -> None:
    data, _ = merge(None, [event("e1")])
    assert merge(data, [event("e1")])[1] == 0


def test_a_merge_into_a_file_of_another_schema_version_writes_the_current_one() -> None:
    data, _ = merge(None, [event("e1")])
    table = pq.read_table(io.BytesIO(data))
    older = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({"auditlake.schema_version": "0"}), older)
    merged, added = merge(older.getvalue(), [event("e2")])
    assert added == 1 and [r["id"] for r in read_rows(merged)] == ["e1", "e2"]
    schema = pq.ParquetFile(io.BytesIO(merged)).schema_arrow
    assert schema.metadata[b"auditlake.schema_version"] == SCHEMA_VERSION.encode()


@pytest.mark.parametrize(
    ("tenant", "folder", "legacy"),
    [("acme", "acme", "acme"), ("123", "123", "123"), ("a:b", "a%3Ab", "a%3Ab"),
     ("A.b_c-9", "%41.b_c-9", "A.b_c-9"), ("Acme", "%41cme", "Acme"),
     ("2026-01-01T10:00:00", "2026-01-01%5410%3A00%3A00", "2026-01-01T10%3A00%3A00")],
)  # fmt: skip
def test_a_tenants_folder_is_its_quoted_name_in_either_layout(
    tenant: str, folder: str, legacy: str
) -> None:
    assert tenant_folder(tenant) == f"{folder}/"
    assert legacy_tenant_folder(tenant) == f"tenant={legacy}/"
    assert tenant_of_folder(folder) == tenant
    assert tenant_of_folder(f"tenant={legacy}") == tenant


@pytest.mark.parametrize(
    "folder", ["", "a%3ab", "a:b", "-x", ".lock", ".locks", "tenant=", "a%2Fb", "a b", "Acme"]
)
def test_a_folder_the_archiver_did_not_name_is_no_tenants(folder: str) -> None:
    # lower-case escapes, unquoted ":" or capitals, bad names
    assert tenant_of_folder(folder) is None


def test_tenant_folders_never_differ_by_case_alone() -> None:
    # Tenant names are case-sensitive; a case-insensitive file system (macOS,
    # Windows) must still keep each tenant's folder apart.
    tenants = ["acme", "Acme", "ACME", "aCmE", "J", "j", "%4a", "a:b", "A:B", "x-Y_z.9"]
    tenants = [t for t in tenants if tenant_of_folder(tenant_folder(t)[:-1]) == t]
    assert len(tenants) == 9  # "%4a" is no tenant name
    folded = {tenant_folder(t).casefold() for t in tenants}
    assert len(folded) == len(tenants)


@pytest.mark.parametrize(
    ("rest", "legacy", "at"),
    [
        ("year=2026/month=1/day=2/hour=0/events.parquet", False, datetime(2026, 1, 2, 0)),
        ("year=1/month=12/day=31/hour=23/events.parquet", False, datetime(1, 12, 31, 23)),
        ("year=2026/month=01/day=02/hour=00/events.parquet", True, datetime(2026, 1, 2, 0)),
    ],
)
def test_hour_start_reads_each_layouts_numbers(rest: str, legacy: bool, at: datetime) -> None:
    assert hour_start(rest, legacy=legacy) == to_micros(at.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    "rest",
    [
        "year=2026/month=01/day=2/hour=0/events.parquet",  # padded: the legacy layout's
        "year=2026/month=1/day=2/hour=00/events.parquet",
        "year=02026/month=1/day=2/hour=0/events.parquet",
        "year=2026/month=13/day=2/hour=0/events.parquet",  # no such hour
        "year=2026/month=2/day=30/hour=0/events.parquet",
        "year=2026/month=1/day=2/hour=24/events.parquet",
        "year=2026/month=1/day=2/hour=0/other.parquet",
        "year=2026/month=1/day=2/events.parquet",
    ],
)
def test_hour_start_of_anything_else_is_none(rest: str) -> None:
    assert hour_start(rest) is None


def test_moved_path_of_a_legacy_file() -> None:
    old = "tenant=a%3Ab/year=2026/month=01/day=02/hour=00/events.parquet"
    assert moved_path(old) == "a%3Ab/year=2026/month=1/day=2/hour=0/events.parquet"
    assert moved_path("a%3Ab/year=2026/month=1/day=2/hour=0/events.parquet") is None
    assert moved_path("tenant=a%3Ab/notes.txt") is None
    assert moved_path("tenant=a:b/year=2026/month=01/day=02/hour=00/events.parquet") is None


def test_unique_rows_keeps_the_first_row_of_each_id_in_order() -> None:
    first = read_table(merge(None, [event("b"), event("a", T - timedelta(seconds=1))])[0])
    second = read_table(merge(None, [event("c"), event("a", T + timedelta(seconds=9))])[0])
    both = unique_rows(pa.concat_tables([first, second]))
    assert both["id"].to_pylist() == ["a", "b", "c"]
    assert both["occurred_at"][0].as_py() == T - timedelta(seconds=1)  # the first file's
    assert unique_rows(first) is first  # nothing repeated: the table as it is


def test_paths_are_named_by_lake_paths_only() -> None:
    # One module owns where files live; lake.layout does not re-export it.
    import auditlake.lake.layout as layout

    assert not hasattr(layout, "partition_path")
    assert not hasattr(layout, "FILE_NAME")

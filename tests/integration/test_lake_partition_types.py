"""Every column a reader derives from the lake's folder names has one type,
whatever the tenants and hours in the lake: `tenant` is a string (from the
file's own column; the tenant's folder is no `key=value`), `year`, `month`,
`day` and `hour` are integers (unpadded folder names). Read the way the
README shows, with each tool's default options: pyarrow's dataset with hive
partitioning, `pyarrow.parquet.read_table`, DuckDB's `read_parquet` (with
`hive_partitioning = true` and with its auto-detection), and `LakeReader`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from auditlake.consumers.archiver import Archiver
from auditlake.core.event import Event, is_tenant
from auditlake.core.query import Filters, Query
from auditlake.lake.objects import LocalObjects
from auditlake.lake.paths import tenant_folder
from auditlake.lake.reader import LakeReader

# Names that a type inference reads as something else than text: integers
# (one with a leading zero), a float, booleans, nulls, not-a-number,
# infinity, a date, a timestamp, hex, and a name that must be quoted.
AWKWARD_TENANTS = [
    "123", "007", "0", "1e5", "1.5", "true", "null", "NULL", "NaN", "inf",
    "2026-01-01", "2026-01-01T10:00:00", "0x10", "a:b",
]  # fmt: skip
# Hours whose numbers are one digit, two digits, the smallest and largest.
HOURS = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    datetime(999, 9, 9, 9, 9, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
]
Row = tuple[str, str, int, int, int, int]  # tenant, id, year, month, day, hour


def test_the_awkward_names_are_tenant_names() -> None:
    assert all(is_tenant(t) for t in AWKWARD_TENANTS)


def events_of(tenants: list[str]) -> list[Event]:
    """Two events per tenant and hour."""
    return [
        Event(id=f"{tenant}-{n}-{k}", tenant=tenant, action="doc.viewed", occurred_at=at,
              received_at=HOURS[1], source="api", caller="key:k")
        for tenant in tenants for n, at in enumerate(HOURS) for k in range(2)
    ]  # fmt: skip


def expected_rows(events: list[Event]) -> set[Row]:
    return {
        (e.tenant, e.id, e.occurred_at.year, e.occurred_at.month, e.occurred_at.day,
         e.occurred_at.hour)
        for e in events
    }  # fmt: skip


LAKES = {f"only {t}": [t] for t in AWKWARD_TENANTS} | {
    "all together": AWKWARD_TENANTS,
    "with plain names": ["acme", "123", "globex", "2026-01-01"],
}


@pytest.fixture(scope="module", params=list(LAKES))
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A lake folder archived from the events of some tenants, and the events."""
    events = events_of(LAKES[request.param])
    folder = tmp_path_factory.mktemp("lake")
    Archiver(LocalObjects(folder)).archive(events)
    return folder, events


def test_pyarrow_dataset_with_hive_partitioning(lake: Any) -> None:
    folder, events = lake
    table = ds.dataset(folder, partitioning="hive").to_table()
    assert column_types(table.schema) == {
        "tenant": pa.string(), "year": pa.int32(), "month": pa.int32(),
        "day": pa.int32(), "hour": pa.int32(),
    }  # fmt: skip
    assert rows_of(table.to_pylist()) == expected_rows(events)
    assert len(table) == len(events)  # each event once


def test_pyarrow_parquet_read_table(lake: Any) -> None:
    folder, events = lake
    table = pq.read_table(folder)
    dictionary = pa.dictionary(pa.int32(), pa.int32())  # read_table's own partition encoding
    assert column_types(table.schema) == {
        "tenant": pa.string(), "year": dictionary, "month": dictionary,
        "day": dictionary, "hour": dictionary,
    }  # fmt: skip
    assert rows_of(table.to_pylist()) == expected_rows(events)
    assert len(table) == len(events)


@pytest.mark.parametrize("options", [", hive_partitioning = true", ""])
def test_duckdb_read_parquet_over_the_whole_lake(lake: Any, options: str) -> None:
    folder, events = lake
    relation = duckdb.sql(
        "SELECT tenant, id, year, month, day, hour FROM "
        f"read_parquet('{folder.as_posix()}/**/*.parquet'{options})"
    )
    assert dict(zip(relation.columns, map(str, relation.types), strict=True)) == {
        "tenant": "VARCHAR", "id": "VARCHAR", "year": "BIGINT", "month": "BIGINT",
        "day": "BIGINT", "hour": "BIGINT",
    }  # fmt: skip
    found = relation.fetchall()
    assert set(found) == expected_rows(events)
    assert len(found) == len(events)


def test_duckdb_over_one_tenants_folder(lake: Any) -> None:
    folder, events = lake
    tenant = events[0].tenant
    quoted = tenant_folder(tenant)[:-1]  # NULL is %4E%55%4C%4C
    found = duckdb.sql(
        "SELECT tenant, id, year, month, day, hour, typeof(tenant), typeof(hour) FROM "
        f"read_parquet('{folder.as_posix()}/{quoted}/*/*/*/*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert {r[:6] for r in found} == expected_rows([e for e in events if e.tenant == tenant])
    assert {r[6:] for r in found} == {("VARCHAR", "BIGINT")}


def test_lake_reader(lake: Any) -> None:
    folder, events = lake
    reader = LakeReader(LocalObjects(folder))
    for tenant in {e.tenant for e in events}:
        page = reader.search(Query(tenant, Filters(), "asc", 1000))
        mine = [e for e in events if e.tenant == tenant]
        assert page.events == sorted(mine, key=lambda e: (e.occurred_at, e.id))


def column_types(schema: pa.Schema) -> dict[str, pa.DataType]:
    return {name: schema.field(name).type for name in ("tenant", "year", "month", "day", "hour")}


def rows_of(rows: list[dict[str, Any]]) -> set[Row]:
    return {(r["tenant"], r["id"], r["year"], r["month"], r["day"], r["hour"]) for r in rows}


def test_the_readmes_pyarrow_example(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (example,) = re.findall(r"```python\n(import pyarrow.dataset as ds\n.*?)```", readme, re.S)
    day = datetime(2026, 11, 20, 10, tzinfo=UTC)
    events = [
        Event(id=f"{tenant}-{n}", tenant=tenant, action="doc.viewed", occurred_at=at,
              received_at=at, source="api", caller="key:k")
        for tenant in ("acme", "123") for n, at in enumerate([day, day + timedelta(days=1)])
    ]  # fmt: skip
    Archiver(LocalObjects(tmp_path / "lake")).archive(events)
    names: dict[str, Any] = {}
    code = example.replace('"data/lake', f'"{tmp_path.as_posix()}/lake')
    exec(code.replace("\nlake.to_table(", "\nresult = lake.to_table("), names)
    assert names["result"].column("id").to_pylist() == ["acme-0"]

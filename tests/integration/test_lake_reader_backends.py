"""Lake searches on every object store: the same workload archived into a local
folder and into S3 (a moto server), paged through and compared with the
reference semantics of `core.query.matches`.

(Named apart from tests/unit/test_lake_reader.py: the test folders have no
`__init__.py`, so two test modules with one basename cannot both be collected.)
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.integration.test_lake_objects import _s3, s3_endpoint  # noqa: F401 (a fixture)
from tests.unit.test_lake_reader import (
    EMPTY_SHAPES,
    EVENTS,
    SHAPES,
    START,
    archived,
    page_through,
    q,
    reference,
    us,
)

from auditlake.lake.objects import LocalObjects, ObjectStore
from auditlake.lake.reader import LakePage, LakeReader


@pytest.fixture(scope="module", params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ObjectStore:
    """The workload archived once per backend for this module."""
    if request.param == "local":
        return archived(LocalObjects(tmp_path_factory.mktemp("lake")))
    return archived(_s3(request.getfixturevalue("s3_endpoint")))


def test_every_hour_of_the_workload_is_listed(lake: ObjectStore) -> None:
    paths = lake.list("acme/")
    # Sorted as text, so hour=10 comes before hour=9: LakeReader orders by number.
    assert [p.split("/")[4] for p in paths] == sorted(f"hour={h}" for h in range(9, 14))


@pytest.mark.parametrize("name", list(SHAPES))
def test_paged_search_equals_the_reference(lake: ObjectStore, name: str) -> None:
    query = SHAPES[name]
    expected = reference(EVENTS, query)
    assert expected
    assert page_through(LakeReader(lake), query) == expected


@pytest.mark.parametrize("name", list(EMPTY_SHAPES))
def test_search_without_matches_is_one_empty_page(lake: ObjectStore, name: str) -> None:
    assert LakeReader(lake).search(EMPTY_SHAPES[name]) == LakePage([], None)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_before_us_stops_where_the_hot_store_starts(lake: ObjectStore, order: str) -> None:
    boundary = us(START + timedelta(hours=2, minutes=40))
    query = q(order=order, limit=7, outcome="success")
    expected = reference(EVENTS, query, before_us=boundary)
    assert expected
    assert page_through(LakeReader(lake), query, before_us=boundary) == expected


def test_a_tenant_without_partitions_is_empty(lake: ObjectStore, tmp_path: Path) -> None:
    reader = LakeReader(lake)
    assert reader.search(q(tenant="acme.e")) == LakePage([], None)  # a name prefix of acme.eu
    assert reader.search(q(tenant="nobody", order="asc")) == LakePage([], None)

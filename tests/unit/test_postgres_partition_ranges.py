"""The PostgreSQL store's partition ranges (pure: no database)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditlake.store.postgres_partitions import partition_of, partitions_around


@pytest.mark.parametrize(
    ("moment", "period", "name", "start", "end"),
    [
        (datetime(2026, 11, 30, 23, 59, tzinfo=UTC), "day", "events_2026_11_30",
         datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 12, tzinfo=UTC), "month", "events_2026_12",
         datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        # Another offset is the same instant in UTC: the next day there.
        (datetime(2026, 11, 30, 20, tzinfo=timezone(timedelta(hours=-5))), "day",
         "events_2026_12_01", datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
        (datetime(2024, 2, 29, 1), "month", "events_2024_02",  # naive: UTC
         datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_a_moment_falls_in_its_utc_day_or_month(
    moment: datetime, period: str, name: str, start: datetime, end: datetime
) -> None:
    assert partition_of(moment, period) == (name, start, end)  # type: ignore[arg-type]


def test_partitions_around_now_are_contiguous_and_in_order() -> None:
    found = partitions_around(datetime(2026, 1, 15, tzinfo=UTC), "month", ahead=2, behind=1)
    assert [p.name for p in found] == [
        "events_2025_12",
        "events_2026_01",
        "events_2026_02",
        "events_2026_03",
    ]
    assert all(a.end == b.start for a, b in itertools.pairwise(found))
    days = partitions_around(datetime(2026, 3, 1, tzinfo=UTC), "day", ahead=0, behind=1)
    assert [p.name for p in days] == ["events_2026_02_28", "events_2026_03_01"]

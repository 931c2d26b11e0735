"""The general poller with a scripted vendor: the checkpoint rule, late
events, errors, dead letters and backfills (journal in memory, state in a
real SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Provenance
from auditlake.core.query import parse_query
from auditlake.core.times import format_rfc3339
from auditlake.errors import Unavailable
from auditlake.ingest import Ingest
from auditlake.journal.memory import MemoryEventLog
from auditlake.metrics import Metrics
from auditlake.pollers.base import InvalidItem, Mapped, Window
from auditlake.pollers.poller import Poller, Schedule
from auditlake.pollers.runner import PollerRunner
from auditlake.pollers.state import PollerState

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LAG = 300.0


class ScriptedVendor:
    """Items with a time and a moment from which the API shows them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.now = T0
        self.windows: list[Window] = []
        self.fail_after_pages: int | None = None

    def add(self, n: int, when: datetime, visible_at: datetime | None = None) -> None:
        self.items.append({"id": f"ev-{n}", "when": when, "visible": visible_at or when})

    def pages(self, window: Window) -> Iterator[list[Any]]:
        self.windows.append(window)
        shown = [
            i
            for i in self.items
            if window.since <= i["when"] < window.before and i["visible"] <= self.now
        ]
        shown.sort(key=lambda i: i["when"])
        for number, start in enumerate(range(0, len(shown), 2)):
            if self.fail_after_pages is not None and number >= self.fail_after_pages:
                raise Unavailable("the vendor API timed out")
            yield shown[start : start + 2]

    def map_item(self, raw: Any) -> Mapped:
        if not isinstance(raw, dict) or "id" not in raw:
            raise InvalidItem("not an item")
        item = EventInput(action=raw.get("action", "vendor.change"), id=raw["id"],
                          occurred_at=format_rfc3339(raw["when"]))  # fmt: skip
        return Mapped(item, Provenance("vendor:test", {"id": raw["id"]}), raw["when"])


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ScriptedVendor, Poller, MemoryEventLog, PollerState]]:
    vendor = ScriptedVendor()
    journal = MemoryEventLog()
    journal.start()
    state = PollerState(tmp_path / "pollers.db")
    poller = Poller(
        "vendor", "acme", vendor, Schedule(60.0, LAG, initial_checkpoint=T0 - timedelta(hours=1)),
        ingest=Ingest(journal, Metrics()), state=state, limits=Limits(), clock=lambda: vendor.now,
    )  # fmt: skip
    yield vendor, poller, journal, state
    state.close()


def stored_ids(journal: MemoryEventLog) -> list[str]:
    page = journal.search(parse_query("acme", {"limit": "1000", "order": "asc"}))
    return [msgspec.json.decode(b)["id"] for b in page.events]


def test_windows_and_checkpoints_follow_the_rule(setup: Any) -> None:
    vendor, poller, journal, state = setup
    vendor.add(1, T0 - timedelta(minutes=50))
    vendor.add(2, T0 - timedelta(minutes=1))
    first = poller.poll_once()
    assert vendor.windows[0] == Window(T0 - timedelta(hours=1, seconds=LAG), T0)
    assert first.checkpoint == T0 - timedelta(seconds=LAG) == state.checkpoint("vendor")
    assert (first.fetched, first.created) == (2, 2)

    vendor.now = T0 + timedelta(minutes=1)
    second = poller.poll_once()
    assert vendor.windows[1].since == T0 - timedelta(seconds=2 * LAG)
    assert second.duplicates == 1 and second.created == 0  # ev-2 again, from the lag window
    assert second.checkpoint == vendor.now - timedelta(seconds=LAG)
    assert stored_ids(journal) == ["ev-1", "ev-2"]


def test_late_events_inside_the_lag_are_picked_up(setup: Any) -> None:
    vendor, poller, journal, _state = setup
    late = T0 - timedelta(minutes=2)
    vendor.add(1, late, visible_at=T0 + timedelta(seconds=30))  # published 2.5 min late
    assert poller.poll_once().created == 0
    vendor.now = T0 + timedelta(minutes=1)
    assert poller.poll_once().created == 1
    assert stored_ids(journal) == ["ev-1"]


def test_an_error_keeps_the_checkpoint_and_a_retry_finishes_the_window(setup: Any) -> None:
    vendor, poller, journal, state = setup
    for n in range(5):
        vendor.add(n, T0 - timedelta(minutes=30 - n))
    vendor.fail_after_pages = 1
    with pytest.raises(Unavailable):
        poller.poll_once()
    assert state.checkpoint("vendor") is None
    assert stored_ids(journal) == ["ev-0", "ev-1"]  # the first page was kept
    vendor.fail_after_pages = None
    result = poller.poll_once()
    assert (result.created, result.duplicates) == (3, 2)
    assert state.checkpoint("vendor") == T0 - timedelta(seconds=LAG)


def test_bad_items_are_dead_lettered_and_the_poll_goes_on(setup: Any) -> None:
    vendor, poller, journal, state = setup
    vendor.add(1, T0 - timedelta(minutes=5))
    vendor.items.append({"when": T0 - timedelta(minutes=4), "visible": T0})  # no id
    vendor.items.append({"id": "blank-action", "action": "  ", "when": T0 - timedelta(minutes=3),
                         "visible": T0})  # fmt: skip
    vendor.add(2, T0 - timedelta(minutes=2))
    result = poller.poll_once()
    assert (result.created, result.invalid) == (2, 2)
    assert stored_ids(journal) == ["ev-1", "ev-2"]
    reasons = [d.reason for d in state.dead_letters("vendor")]
    assert reasons[0] == "not an item" and "action" in reasons[1]
    assert result.checkpoint is not None
    vendor.now += timedelta(minutes=1)  # the next poll sees them again: kept once
    assert poller.poll_once().invalid == 2
    assert len(state.dead_letters("vendor")) == 2


def test_the_checkpoint_never_moves_back_nor_past_now_minus_lag(setup: Any) -> None:
    vendor, poller, _journal, state = setup
    vendor.add(1, T0 + timedelta(minutes=10))  # an event stamped in the future
    vendor.now = T0 + timedelta(hours=1)
    poller.poll_once()
    assert state.checkpoint("vendor") == vendor.now - timedelta(seconds=LAG)
    vendor.now = T0  # the clock stepped back
    poller.poll_once()
    assert state.checkpoint("vendor") == T0 + timedelta(hours=1) - timedelta(seconds=LAG)


def test_a_backfill_leaves_the_checkpoint_alone(setup: Any) -> None:
    vendor, poller, journal, state = setup
    vendor.add(1, T0 - timedelta(days=3))
    result = poller.backfill(T0 - timedelta(days=4), T0 - timedelta(days=2))
    assert (result.created, result.checkpoint) == (1, None)
    assert state.checkpoint("vendor") is None
    assert stored_ids(journal) == ["ev-1"]


def test_runner_backs_off_after_failures_up_to_the_interval(setup: Any) -> None:
    _vendor, poller, _journal, _state = setup
    runner = PollerRunner(poller, max_backoff=30.0, jitter=lambda: 1.0)
    assert runner.next_wait(failed=False) == 60.0
    waits = []
    for failures in range(1, 9):
        runner.failures = failures
        waits.append(runner.next_wait(failed=True))
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(waits) == 30.0  # capped by max_backoff (and by the poll interval)

"""One contract suite for every journal + store backend (memory, SQLite, and
the PostgreSQL store), and a cross-check of each store's search against the
reference `matches()`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.backend_pairs import (
    QUERIES,
    RECEIVED,
    Backend,
    MemoryPair,
    PostgresPair,
    SqlitePair,
    all_pages,
    random_events,
    stored,
)

from auditlake.core.query import parse_query
from auditlake.errors import Conflict
from auditlake.store import sqlite as sqlite_store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        log = MemoryPair()
        log.start()
        yield log
        return
    pair: SqlitePair | PostgresPair
    if request.param == "postgres":
        pair = PostgresPair(tmp_path, request.getfixturevalue("pg_dsn"))
    else:
        pair = SqlitePair(tmp_path)
    yield pair
    pair.close()


def test_append_get_and_exactly_once(backend: Backend) -> None:
    first = backend.append(stored("acme", {"id": "a", "action": "x"}, {"id": "b", "action": "x"}))
    assert [r.status for r in first] == ["created", "created"]
    again = backend.append(stored("acme", {"id": "b", "action": "x"}, {"id": "c", "action": "x"}))
    assert [(r.id, r.status) for r in again] == [("b", "duplicate"), ("c", "created")]
    inside = backend.append(stored("acme", {"id": "d", "action": "x"}, {"id": "d", "action": "x"}))
    assert [r.status for r in inside] == ["created", "duplicate"]
    assert backend.append(stored("other", {"id": "a", "action": "x"}))[0].status == "created"
    body = backend.get("acme", "a")
    assert body is not None and msgspec.json.decode(body)["tenant"] == "acme"
    assert backend.get("nobody", "a") is None
    page = backend.search(parse_query("acme", {"limit": "100"}))
    assert sorted(msgspec.json.decode(b)["id"] for b in page.events) == ["a", "b", "c", "d"]


EVT_7: dict[str, Any] = {
    "id": "evt-7", "action": "user.signed_in", "occurred_at": "2024-05-31T23:00:00Z",
    "actor": {"id": "u1", "type": "user", "name": "Ada"},
    "targets": [{"id": "t0", "type": "team"}, {"id": "t1", "type": "repo"}],
    "context": {"ip": "10.0.0.1"}, "metadata": {"plan": "pro", "seats": 3},
}  # fmt: skip


def test_an_identical_resend_is_a_duplicate_whatever_the_service_filled_in(
    backend: Backend,
) -> None:
    no_time = {"id": "evt-8", "action": "user.signed_out"}  # occurred_at: the receipt time
    first = backend.append(stored("acme", EVT_7, no_time))
    assert [(r.id, r.status) for r in first] == [("evt-7", "created"), ("evt-8", "created")]
    original = backend.get("acme", "evt-7")
    # A second later, through another key, in the same content written another
    # way: keys reordered, blanks around text, the default version spelled out,
    # occurred_at in another offset and as openstatus epoch milliseconds.
    same = {
        **EVT_7, "action": " user.signed_in ", "version": 1,
        "metadata": {"seats": 3, "plan": "pro"}, "occurred_at": "2024-06-01T01:00:00+02:00",
    }  # fmt: skip
    as_millis = {**EVT_7, "occurred_at": None, "timestamp": 1_717_196_400_000}
    later = RECEIVED + timedelta(seconds=1)
    again = backend.append(stored("acme", same, as_millis, no_time, received=later, caller="key:u"))
    assert [(r.id, r.status) for r in again] == [("evt-7", "duplicate")] * 2 + [
        ("evt-8", "duplicate")
    ]
    assert backend.get("acme", "evt-7") == original  # the first copy, untouched


CHANGES: dict[str, dict[str, Any]] = {
    "action": {"action": "org.deleted"},
    "occurred_at": {"occurred_at": "2024-05-31T23:00:00.000001Z"},
    "occurred_at left out": {"occurred_at": None},
    "actor id": {"actor": {"id": "u2", "type": "user", "name": "Ada"}},
    "actor name": {"actor": {"id": "u1", "type": "user", "name": "Eve"}},
    "targets": {"targets": [{"id": "t0", "type": "team"}]},
    "target order": {"targets": [{"id": "t1", "type": "repo"}, {"id": "t0", "type": "team"}]},
    "context": {"context": {"ip": "10.0.0.2"}},
    "metadata value": {"metadata": {"plan": "free", "seats": 3}},
    "metadata key added": {"metadata": {"plan": "pro", "seats": 3, "sso": True}},
    "outcome": {"outcome": "failure"},
    "error": {"error": {"code": "E1"}},
    "version": {"version": 2},
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=list(CHANGES))
def test_another_event_under_a_stored_id_is_a_conflict_and_nothing_is_stored(
    backend: Backend, change: dict[str, Any]
) -> None:
    backend.append(stored("acme", EVT_7))
    original = backend.get("acme", "evt-7")
    batch = stored("acme", {"id": "new-1", "action": "x"}, {**EVT_7, **change})
    with pytest.raises(Conflict) as refused:
        backend.append(batch)
    assert refused.value.status == 409
    assert refused.value.details == [
        {"id": "evt-7", "index": 1, "message": "a different event is already stored under this id"}
    ]
    assert backend.get("acme", "new-1") is None  # all or nothing
    assert backend.get("acme", "evt-7") == original
    assert backend.append(stored("acme", EVT_7))[0].status == "duplicate"


def test_two_different_events_with_one_id_in_a_request_are_a_conflict(backend: Backend) -> None:
    batch = stored(
        "acme", {"id": "w", "action": "a"}, {"id": "ok", "action": "a"},
        {"id": "w", "action": "a"}, {"id": "w", "action": "b"},
    )  # fmt: skip
    with pytest.raises(Conflict) as refused:
        backend.append(batch)
    assert [(p["id"], p["index"]) for p in refused.value.details] == [("w", 3)]
    assert "index 0" in refused.value.details[0]["message"]
    assert backend.get("acme", "w") is None and backend.get("acme", "ok") is None
    same_twice = stored("acme", {"id": "w", "action": "a"}, {"id": "w", "action": "a"})
    assert [r.status for r in backend.append(same_twice)] == ["created", "duplicate"]


def test_a_generated_id_sent_again_is_judged_by_the_stored_body(backend: Backend) -> None:
    (created,) = backend.append(stored("acme", {"action": "x", "metadata": {"k": "v"}}))
    resend = {"id": created.id, "action": "x", "metadata": {"k": "v"}}
    later = RECEIVED + timedelta(minutes=5)
    assert backend.append(stored("acme", resend, received=later))[0].status == "duplicate"
    with pytest.raises(Conflict):
        backend.append(stored("acme", {**resend, "action": "y"}))


def test_keep_first_keeps_the_stored_copy_and_reports_the_conflict(backend: Backend) -> None:
    backend.append(stored("acme", EVT_7))
    original = backend.get("acme", "evt-7")
    changed = {**EVT_7, "action": "org.deleted"}
    results = backend.append_keeping_first(
        stored("acme", changed, {"id": "n1", "action": "x"}, EVT_7, {"id": "n1", "action": "y"})
    )
    assert [(r.id, r.status) for r in results] == [
        ("evt-7", "conflict"), ("n1", "created"), ("evt-7", "duplicate"), ("n1", "conflict"),
    ]  # fmt: skip
    assert backend.get("acme", "evt-7") == original
    kept = backend.get("acme", "n1")
    assert kept is not None and msgspec.json.decode(kept)["action"] == "x"


@pytest.mark.parametrize("few_targets", [1, 2000], ids=["time-index", "by-seq"])
@pytest.mark.parametrize("params", QUERIES, ids=[str(q) for q in QUERIES])
def test_search_pages_agree_with_the_reference(
    tmp_path: Path, params: dict[str, str], few_targets: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "FEW_TARGETS", few_targets)
    agrees_with_the_reference(SqlitePair(tmp_path), params)


@pytest.mark.postgres
@pytest.mark.parametrize("params", QUERIES, ids=[str(q) for q in QUERIES])
def test_postgres_search_pages_agree_with_the_reference(
    tmp_path: Path, params: dict[str, str], pg_dsn: str
) -> None:
    agrees_with_the_reference(PostgresPair(tmp_path, pg_dsn), params)


def agrees_with_the_reference(pair: SqlitePair | PostgresPair, params: dict[str, str]) -> None:
    """The same 300 random events (and a noise tenant's copy) in `pair` and
    in the memory log: every page of the search `params` is the same."""
    events = random_events(7, 300)
    reference = MemoryPair()
    reference.start()
    try:
        for chunk in range(0, 300, 60):
            batch = events[chunk : chunk + 60]
            reference.append(stored("acme", *batch))
            pair.append(stored("acme", *batch))
            pair.append(stored("noise", *batch))
        expected, got = all_pages(reference, params), all_pages(pair, params)
        assert got == expected
        assert params == {"q": "alp"} or len(expected) > 0
    finally:
        pair.close()

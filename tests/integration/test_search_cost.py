"""The cost of one search is bounded: `q` is capped in words and characters
(400 naming the cap, before any backend work), and a search that takes more
CPU time than its budget in the store or the lake is stopped with a 422
saying so, never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.backend_pairs import SqlitePair, stored

from auditlake.core.query import MAX_Q_CHARS, MAX_Q_WORDS, Filters, Query
from auditlake.errors import InvalidInput
from auditlake.lake.layout import merge
from auditlake.lake.objects import LocalObjects
from auditlake.lake.paths import partition_path
from auditlake.lake.reader import LakeReader
from auditlake.runtime import Services
from auditlake.store.sqlite import SqliteStore
from auditlake.web.app import create_app

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
EVENTS = [
    {"id": f"e{n}", "action": "a.b", "metadata": {"note": f"{WORDS[n % 8]} {WORDS[n % 5]} n{n}"}}
    for n in range(400)
]
ALPHAS = sum(1 for n in range(400) if n % 8 == 0 or n % 5 == 0)  # events with "alpha"


@pytest.fixture
def client(services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    with TestClient(create_app(services)) as test_client:
        yield test_client, {"authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("q", "cap"),
    [
        (" ".join(["ab"] * (MAX_Q_WORDS + 1)), f"at most {MAX_Q_WORDS} words"),
        (" ".join(["ab"] * 4000), f"at most {MAX_Q_CHARS} characters"),
        ("x" * (MAX_Q_CHARS + 1), f"at most {MAX_Q_CHARS} characters"),
    ],
)
def test_q_over_a_cap_is_a_400_naming_it(
    client: tuple[TestClient, dict[str, str]], q: str, cap: str
) -> None:
    api, headers = client
    started = time.perf_counter()
    response = api.get("/v1/events", params={"q": q}, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "malformed" and cap in error["message"]
    assert error["details"][0]["field"] == "q"
    assert time.perf_counter() - started < 2.0  # refused before any search work


def test_q_at_the_caps_is_searched(client: tuple[TestClient, dict[str, str]]) -> None:
    api, headers = client
    q = " ".join(["zz"] * MAX_Q_WORDS)
    response = api.get("/v1/events", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlitePair]:
    sqlite = SqlitePair(tmp_path_factory.mktemp("store"))
    sqlite.append(stored("acme", *EVENTS))
    sqlite.search(Query("acme"))  # indexed
    yield sqlite
    sqlite.close()


SEARCHES = [
    Filters(q="a b c d e f g h"),
    Filters(actor_type="nobody"),  # no index serves it: a walk of every event
    Filters(q="alpha", action_prefix="a"),
]


@pytest.mark.parametrize("filters", SEARCHES)
def test_a_store_search_over_its_budget_is_stopped_with_a_422(
    pair: SqlitePair, filters: Filters
) -> None:
    query = Query("acme", filters, limit=1000)
    generous = SqliteStore(pair.store._store_path, pair.journal_path)
    stingy = SqliteStore(pair.store._store_path, pair.journal_path, cpu_seconds=0.0)
    try:
        generous.search(query)  # within the default budget
        with pytest.raises(InvalidInput) as exc:
            stingy.search(query)
        assert exc.value.status == 422
        assert "stopped after 0 s of work" in exc.value.message
        assert exc.value.details == [{"field": "search", "message": "too costly: over 0 s of work"}]
        # The connection is usable afterwards: the budget is per search.
        assert len(generous.search(Query("acme", Filters(q="alpha"), limit=1000)).events) == ALPHAS
    finally:
        generous.close()
        stingy.close()


def test_a_lake_search_over_its_budget_is_stopped_with_a_422(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path)
    events = [s.event for s in stored("acme", *EVENTS)]
    objects.put(partition_path("acme", events[0].occurred_at), merge(None, events)[0], None)
    query = Query("acme", Filters(q="alpha"), limit=1000)
    assert len(LakeReader(objects).search(query).events) == ALPHAS
    with pytest.raises(InvalidInput, match="stopped after 0 s of work"):
        LakeReader(objects, cpu_seconds=0.0).search(query)

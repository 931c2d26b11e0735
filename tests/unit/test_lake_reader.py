"""Events back from lake rows, and searches over the lake's partitions in a
local folder, checked against the reference semantics of `core.query.matches`.

The workload and the paging helpers here are shared with the integration test
that runs the same searches on S3 (tests/integration/test_lake_reader_backends.py).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from auditlake.consumers.archiver import Archiver
from auditlake.core.event import Actor, Context, ErrorInfo, Event, Target, to_micros
from auditlake.core.query import Filters, Position, Query, matches
from auditlake.errors import InvalidInput
from auditlake.lake.layout import event_from_row, merge, read_rows, row
from auditlake.lake.objects import LocalObjects, ObjectStore
from auditlake.lake.reader import LakePage, LakePosition, LakeReader

T = datetime(2026, 11, 20, 10, 15, 30, 123456, tzinfo=UTC)
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the workload spans 09:00-14:00
HOUR = timedelta(hours=1)
TENANTS = ("acme", "acme.eu", "org:beta")  # "acme.eu" shares a name prefix; ":" is quoted


def event(event_id: str, at: datetime = T, **fields: object) -> Event:
    base: dict[str, object] = {"action": "user.signed_in", "source": "api", **fields}
    return Event(
        id=event_id, tenant="acme", occurred_at=at, received_at=T, caller="key:k",
        **base,  # type: ignore[arg-type]
    )  # fmt: skip


# --- event_from_row --------------------------------------------------------------

ROUND_TRIP = [
    event(
        "workos", action="user.signed_in", outcome="failure", version=2,
        actor=Actor(id="u1", type="user", name="Ada Lovelace", email="ada@example.com",
                    ip="198.51.100.1", metadata={"plan": "pro", "seats": [1, 2.5, None, True]}),
        targets=[Target(id="t1", type="team", name="Core", metadata={"size": 3}),
                 Target(id="t2")],
        context=Context(location="203.0.113.7", ip="203.0.113.8", user_agent="curl/8",
                        request_id="req-1"),
        error=ErrorInfo(code="E_MFA", message="second factor refused"),
        metadata={"nested": {"deep": ["a", {"b": 1}]}, "unicode": "Grüße ✓"},
    ),
    event("minimal"),
    event("targets-only", targets=[Target(id="t9", type="monitor", metadata={"k": {"v": 1}}),
                                   Target(id="t10", name="n", metadata={})]),
    event("actor-bare", actor=Actor(id="u2")),
    event("actor-empty-metadata", actor=Actor(id="u3", metadata={})),
    event("error-code-only", outcome="failure", error=ErrorInfo(code="E1")),
    event("error-message-only", outcome="failure", error=ErrorInfo(message="broke")),
    event("context-partial", context=Context(request_id="r-9")),
    event("vendor", action="dev.chainguard.registry.pull.v1", source="cloudevents:cgr.dev",
          raw={"specversion": "1.0", "data": {"repo": "x", "tags": ["a"], "n": 3}}),
    event("raw-scalar", raw="just text"),
    event("raw-list", raw=[1, "two", None]),
]  # fmt: skip


@pytest.mark.parametrize("original", ROUND_TRIP, ids=lambda e: e.id)
def test_event_from_row_inverts_row(original: Event) -> None:
    assert event_from_row(row(original)) == original


@pytest.mark.parametrize("original", ROUND_TRIP, ids=lambda e: e.id)
def test_event_from_row_inverts_a_parquet_round_trip(original: Event) -> None:
    data, _ = merge(None, [original])
    (stored,) = read_rows(data)
    back = event_from_row(stored)
    assert back == original
    assert back.occurred_at.tzinfo is UTC  # not pyarrow's own UTC object
    assert msgspec.json.encode(back) == msgspec.json.encode(original)


def test_empty_context_and_error_come_back_as_none() -> None:
    # The one lossy case (documented): flat columns cannot tell {} from null.
    back = event_from_row(row(event("e", context=Context(), error=ErrorInfo())))
    assert (back.context, back.error) == (None, None)


def test_null_metadata_becomes_an_empty_object() -> None:
    assert event_from_row({**row(event("e")), "metadata": None}).metadata == {}


# --- a workload -----------------------------------------------------------------


@dataclass
class Workload:
    """Varied events of three tenants over five hours, from one seed."""

    seed: int = 11
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def events(self, count: int = 300) -> list[Event]:
        """`count` events; some share a microsecond so the id breaks the tie."""
        found: list[Event] = []
        for n in range(count):
            tenant = self.rng.choices(TENANTS, weights=(8, 3, 1))[0]
            if found and n % 9 == 0:
                at = found[-1].occurred_at  # a tie on occurred_at
            else:
                at = START + timedelta(microseconds=self.rng.randrange(5 * 3_600_000_000))
            found.append(self.event(f"ev-{self.rng.getrandbits(32):08x}-{n}", tenant, at))
        return found

    def event(self, event_id: str, tenant: str, at: datetime) -> Event:
        """One event with a random mix of the optional parts."""
        rng = self.rng
        failed = rng.random() < 0.25
        return Event(
            id=event_id,
            tenant=tenant,
            action=rng.choice(ACTIONS),
            occurred_at=at,
            received_at=at + timedelta(seconds=1),
            source=rng.choice(("api", "api", "cloudflare:acc1")),
            caller="key:test",
            outcome="failure" if failed else "success",
            actor=self.actor(),
            targets=[self.target() for _ in range(rng.choice((0, 1, 1, 2)))],
            context=Context(ip="10.0.0.1", user_agent="curl/8") if rng.random() < 0.5 else None,
            error=ErrorInfo(code="timeout", message="upstream timed out") if failed else None,
            metadata=(
                {"region": rng.choice(REGIONS), "tries": rng.randrange(5)}
                if rng.random() < 0.6
                else {}
            ),
            raw={"vendor": {"n": rng.randrange(100)}} if rng.random() < 0.1 else None,
        )

    def actor(self) -> Actor | None:
        rng = self.rng
        if rng.random() < 0.15:
            return None
        n = rng.randrange(6)
        return Actor(
            id=f"u{n}",
            type=rng.choice(("user", "user", "service", None)),
            name=NAMES[n],
            email=f"{NAMES[n].split()[0].lower()}@example.com",
            metadata={"team": rng.choice(("core", "edge"))} if rng.random() < 0.3 else None,
        )

    def target(self) -> Target:
        rng = self.rng
        n = rng.randrange(5)
        return Target(
            id=f"t{n}",
            type=rng.choice(("team", "monitor", None)),
            name=rng.choice(("Frankfurt Edge", "billing", None)),
            metadata={"color": rng.choice(("blue", "green"))} if rng.random() < 0.3 else None,
        )


# `user_%x` and `user_x` make a LIKE-based prefix test fail: `_` and `%` are literal here.
ACTIONS = (
    "user.signed_in", "user.signed_out", "user.created", "monitor.down", "monitor.up",
    "team.member_added", "user_x.renamed", "user_%x.odd",
)  # fmt: skip
NAMES = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Radia Perlman", "Ken")
REGIONS = ("frankfurt", "virginia", "oregon")
EVENTS = Workload().events()


# Moments two events of "acme" share, oldest first.
TIES = sorted(
    a.occurred_at for a, b in itertools.pairwise(EVENTS)
    if a.occurred_at == b.occurred_at and a.tenant == b.tenant == "acme"
)  # fmt: skip


def us(moment: datetime) -> int:
    return to_micros(moment)


def q(tenant: str = "acme", order: str = "desc", limit: int = 7, **filters: object) -> Query:
    return Query(tenant, Filters(**filters), order, limit)  # type: ignore[arg-type]


# Each filter alone, combinations, q words, prefixes, time ranges; both orders.
SHAPES: dict[str, Query] = {
    "everything-desc": q(limit=50),
    "everything-asc": q(order="asc", limit=7),
    "action": q(action="user.signed_in"),
    "action-prefix": q(action_prefix="user.", order="asc"),
    "action-prefix-underscore": q(action_prefix="user_", limit=1),
    "action-prefix-percent": q(action_prefix="user_%", order="asc", limit=1),
    "actor-id": q(actor_id="u2", limit=1),
    "actor-type": q(actor_type="service", order="asc"),
    "target-id": q(target_id="t3"),
    "target-type": q(target_type="monitor", order="asc", limit=50),
    "outcome": q(outcome="failure"),
    "source": q(source="cloudflare:acc1", order="asc"),
    "since-until": q(since_us=us(START + timedelta(minutes=75)), until_us=us(START + 3 * HOUR)),
    "since-asc": q(since_us=us(START + timedelta(minutes=200, seconds=7)), order="asc"),
    "until-on-hour": q(until_us=us(START + 2 * HOUR), limit=50),
    # Bounds on the very microsecond of events (ties included): since keeps, until drops.
    "since-until-exact": q(since_us=us(TIES[0]), until_us=us(TIES[-1])),
    "since-exact-asc": q(since_us=us(TIES[1]), order="asc", limit=50),
    "until-exact-asc": q(until_us=us(TIES[2]), order="asc", limit=50),
    "q-name": q(q="grace"),
    "q-two-words-any-case": q(q="ADA love", order="asc"),
    "q-prefix-in-metadata": q(q="frank", order="asc", limit=50),
    "q-error-and-number": q(q="timed 3"),
    "q-with-filters": q(q="edge", action_prefix="user", outcome="success", limit=1),
    "combined": q(
        action_prefix="monitor.",
        target_type="team",
        outcome="failure",
        since_us=us(START + timedelta(minutes=30)),
        order="asc",
    ),
    "combined-actor": q(actor_type="user", target_id="t1", source="api", limit=50),
    "other-tenant": q(tenant="acme.eu", limit=7),
    "quoted-tenant": q(tenant="org:beta", order="asc", limit=7),
}
EMPTY_SHAPES: dict[str, Query] = {
    "no-such-action": q(action="nope.never"),
    "q-without-words": q(q="-- !!"),
    "q-no-match": q(q="zzzz"),
    "until-before-since": q(since_us=us(START + 2 * HOUR), until_us=us(START + HOUR)),
    "tenant-without-partitions": q(tenant="nobody"),
}


def reference(events: list[Event], query: Query, before_us: int | None = None) -> list[Event]:
    """The tenant's events that `matches`, in the query's (occurred_us, id) order."""
    found = [
        e
        for e in events
        if e.tenant == query.tenant
        and matches(e, us(e.occurred_at), query.filters)
        and (before_us is None or us(e.occurred_at) < before_us)
    ]
    return sorted(found, key=lambda e: (us(e.occurred_at), e.id), reverse=query.order == "desc")


def page_through(reader: LakeReader, query: Query, before_us: int | None = None) -> list[Event]:
    """Every page of `query`, resumed from each page's `next_after`, checked."""
    found: list[Event] = []
    after: LakePosition | None = None
    for _ in range(1000):
        page = reader.search(query, after=after, before_us=before_us)
        assert len(page.events) <= query.limit
        found += page.events
        if page.next_after is None:
            break
        # Only a full page says there is more, and it ends at its last event.
        assert len(page.events) == query.limit
        last = page.events[-1]
        assert page.next_after == LakePosition(us(last.occurred_at), last.id)
        after = page.next_after
    else:
        raise AssertionError("paging did not end")
    ids = [e.id for e in found]
    assert len(ids) == len(set(ids)), "an event came back twice"
    return found


def archived(objects: ObjectStore) -> ObjectStore:
    Archiver(objects).archive(EVENTS)
    return objects


class CountingObjects:
    """An ObjectStore that counts reads, to see which files a search opens."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.gets: list[str] = []
        self.lists: list[str] = []

    def get(self, path: str) -> tuple[bytes, str] | None:
        self.gets.append(path)
        return self.inner.get(path)

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        return self.inner.put(path, data, expected)

    def list(self, prefix: str) -> list[str]:
        self.lists.append(prefix)
        return self.inner.list(prefix)

    def folders(self, prefix: str) -> list[str]:
        return self.inner.folders(prefix)

    def delete(self, path: str, expected: str) -> bool:
        return self.inner.delete(path, expected)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> ObjectStore:
    objects = archived(LocalObjects(tmp_path_factory.mktemp("lake")))
    # Something else in a tenant's folder is not a partition and is skipped.
    assert objects.put("acme/year=2026/notes.txt", b"not parquet", None)
    assert objects.put("acme/year=2026/month=13/day=1/hour=0/events.parquet", b"x", None)
    # Padded numbers are the legacy layout's, never written in a tenant's folder.
    assert objects.put("acme/year=2026/month=11/day=20/hour=09/events.parquet", b"x", None)
    return objects


# --- searches -------------------------------------------------------------------


def test_the_workload_fills_five_hours_of_three_tenants(lake: ObjectStore) -> None:
    assert len({e.id for e in EVENTS}) == 300
    hours = [p for p in lake.list("acme/") if p.endswith("events.parquet")]
    assert len(hours) == 7  # five real hours, the bogus month=13 one and a padded one
    assert lake.list("org%3Abeta/")


@pytest.mark.parametrize("name", list(SHAPES))
def test_paged_search_equals_the_reference(lake: ObjectStore, name: str) -> None:
    query = SHAPES[name]
    expected = reference(EVENTS, query)
    assert expected, "a shape that matches nothing checks little"
    assert page_through(LakeReader(lake), query) == expected


@pytest.mark.parametrize("name", list(EMPTY_SHAPES))
def test_search_without_matches_is_one_empty_page(lake: ObjectStore, name: str) -> None:
    query = EMPTY_SHAPES[name]
    assert reference(EVENTS, query) == []
    assert LakeReader(lake).search(query) == LakePage([], None)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7, 50])
def test_before_us_leaves_the_rest_to_the_hot_store(
    lake: ObjectStore, order: str, limit: int
) -> None:
    boundary = us(START + timedelta(hours=3, minutes=20, microseconds=5))
    query = q(order=order, limit=limit, since_us=us(START + timedelta(minutes=150)))
    expected = reference(EVENTS, query, before_us=boundary)
    assert expected
    assert page_through(LakeReader(lake), query, before_us=boundary) == expected


def test_before_us_on_a_tied_microsecond_keeps_none_of_the_tie(lake: ObjectStore) -> None:
    tied = next(e.occurred_at for i, e in enumerate(EVENTS) if i and i % 9 == 0)
    query = q(order="asc", limit=3)
    got = page_through(LakeReader(lake), query, before_us=us(tied))
    assert got == reference(EVENTS, query, before_us=us(tied))
    assert all(e.occurred_at < tied for e in got)


def test_the_hot_store_position_in_the_query_is_ignored(lake: ObjectStore) -> None:
    plain = q(limit=5)
    with_hot_cursor = msgspec.structs.replace(plain, after=Position(us(START), 42))
    reader = LakeReader(lake)
    assert reader.search(with_hot_cursor) == reader.search(plain)


def test_after_resumes_inside_a_tie_on_occurred_at(lake: ObjectStore) -> None:
    reader = LakeReader(lake)
    for order in ("asc", "desc"):
        everything = reference(EVENTS, q(order=order))
        for i, e in enumerate(everything[:-1]):
            if e.occurred_at == everything[i + 1].occurred_at:
                after = LakePosition(us(e.occurred_at), e.id)
                page = reader.search(q(order=order, limit=1), after=after)
                assert page.events == [everything[i + 1]]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_through_a_tie_on_an_hour_boundary(tmp_path: Path, order: str) -> None:
    # The hour pruning must keep an hour whose first microsecond still has rows.
    edge = START + 3 * HOUR
    events = [event("b", edge), event("a", edge), event("z", edge - timedelta(microseconds=1)),
              event("c", edge), event("y", edge + timedelta(microseconds=1))]  # fmt: skip
    objects = LocalObjects(tmp_path / "lake")
    Archiver(objects).archive(events)
    query = q(order=order, limit=1)
    assert page_through(LakeReader(objects), query) == reference(events, query)
    assert [e.id for e in reference(events, q(order="asc"))] == ["z", "a", "b", "c", "y"]


def test_a_page_reads_only_the_hours_it_needs(lake: ObjectStore) -> None:
    counting = CountingObjects(lake)
    reader = LakeReader(counting)
    # The newest events are in the last hour; one file gives limit + 1 rows.
    page = reader.search(q(limit=3))
    assert len(page.events) == 3 and page.next_after is not None
    assert counting.gets == ["acme/year=2026/month=11/day=20/hour=13/events.parquet"]
    counting.gets.clear()
    reader.search(q(since_us=us(START + timedelta(minutes=70)), until_us=us(START + 2 * HOUR)))
    assert counting.gets == ["acme/year=2026/month=11/day=20/hour=10/events.parquet"]
    counting.gets.clear()
    reader.search(q(order="asc", limit=1), before_us=us(START))
    assert counting.gets == []


def test_limit_must_be_positive(lake: ObjectStore) -> None:
    with pytest.raises(InvalidInput):
        LakeReader(lake).search(q(limit=0))


def test_position_is_a_compact_json_array() -> None:
    position = LakePosition(1_700_000_000_000_000, "ev-1")
    assert msgspec.json.encode(position) == b'[1700000000000000,"ev-1"]'
    assert msgspec.json.decode(b'[5,"x"]', type=LakePosition) == LakePosition(5, "x")


def test_an_empty_lake_has_nothing(tmp_path: Path) -> None:
    reader = LakeReader(LocalObjects(tmp_path / "none"))
    assert reader.search(q(q="ada")) == LakePage([], None)
    assert reader.search(q(), before_us=us(T)) == LakePage([], None)


class VanishingObjects(CountingObjects):
    """Counts reads; some files are removed between the listing and the read."""

    def __init__(self, inner: ObjectStore, gone: set[str]) -> None:
        super().__init__(inner)
        self.gone = gone

    def get(self, path: str) -> tuple[bytes, str] | None:
        self.gets.append(path)
        return None if path in self.gone else self.inner.get(path)


def test_a_sparse_search_reads_hours_in_growing_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hours = [event(f"h{n:02d}", T + n * HOUR, action="rare" if n in (3, 30) else "common")
             for n in range(40)]  # fmt: skip
    objects = LocalObjects(tmp_path / "lake")
    Archiver(objects).archive(hours)
    gone = {p for p in objects.list("") if "hour=13/" in p and "day=21" in p}  # h27
    counting = VanishingObjects(objects, gone)
    reader = LakeReader(counting)
    found = page_through(reader, q(action="rare", order="asc", limit=1))
    assert [e.id for e in found] == ["h03", "h30"]
    everything = page_through(reader, q(order="asc", limit=5))
    assert [e.id for e in everything] == [e.id for e in hours if e.id != "h27"]
    counting.gets.clear()
    reader.search(q(action="common", limit=1))  # needs 2 rows: h39, then h38 and h37
    assert len(counting.gets) == 3
    # Groups that stop at a number of rows (here 3 files) give the same pages.
    monkeypatch.setattr("auditlake.lake.reader._MAX_GROUP_ROWS", 3)
    assert [e.id for e in page_through(reader, q(action="rare", limit=1))] == ["h30", "h03"]
    expected = [e.id for e in reversed(hours) if e.id != "h27"]
    assert [e.id for e in page_through(reader, q(limit=4))] == expected

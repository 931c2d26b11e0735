"""The Cloudflare fetchers against the fake Cloudflare API on 127.0.0.1:
paging (v1 page numbers, v2 cursors), the window, retries and refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import msgspec
import pytest
from tests.fake_cloudflare import FakeCloudflare, v1_item, v2_item

from auditlake.pollers.base import Fetcher, InvalidItem, VendorError, Window
from auditlake.pollers.cloudflare import CloudflareV1, CloudflareV2, make_fetcher
from auditlake.pollers.http import JsonGetter
from auditlake.source_settings import CloudflareSource

TOKEN = "cf-test-token-0123456789"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = Window(T0, T0 + timedelta(hours=1))
ITEMS = {"v1": v1_item, "v2": v2_item}


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(token=TOKEN) as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


class Clock:
    """A settable clock for the fake's visibility rule."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fetcher(
    fake: FakeCloudflare,
    client: httpx.Client,
    api: str = "v1",
    *,
    account: str = "acc-1",
    sleeps: list[float] | None = None,
    **settings: Any,
) -> CloudflareV1 | CloudflareV2:
    """A fetcher for `account` on the fake; sleeps really happen and are recorded."""
    source = msgspec.structs.replace(
        CloudflareSource(name=account, account_id=account, token=TOKEN, base_url=fake.base_url),
        api=api,
        **settings,
    )
    recorded = [] if sleeps is None else sleeps

    def sleep(seconds: float) -> None:
        recorded.append(seconds)
        time.sleep(seconds)

    getter = JsonGetter(
        client,
        token=source.token,
        timeout=source.timeout_seconds,
        max_attempts=source.max_attempts,
        max_backoff=source.max_backoff_seconds,
        sleep=sleep,
        random=lambda: 0.05,  # short, fixed backoff
    )
    return CloudflareV1(source, getter) if api == "v1" else CloudflareV2(source, getter)


def fill(fake: FakeCloudflare, api: str, count: int, account: str = "acc-1") -> list[str]:
    """`count` items one second apart from T0; their ids in time order."""
    items = [ITEMS[api](n, T0 + timedelta(seconds=n), account) for n in range(count)]
    fake.add(account, items)
    return [item["id"] for item in items]


def fetch_ids(source: Fetcher, window: Window = HOUR) -> list[str]:
    return [source.map_item(raw).item.id or "" for page in source.pages(window) for raw in page]


def test_v1_pages_a_window_by_page_number(fake: FakeCloudflare, client: httpx.Client) -> None:
    ids = fill(fake, "v1", 2500)
    source = fetcher(fake, client, "v1", page_size=1000)
    pages = list(source.pages(HOUR))
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert [source.map_item(raw).item.id for page in pages for raw in page] == ids
    assert [r.params["page"] for r in fake.requests] == ["1", "2", "3"]
    first = fake.requests[0]
    assert first.path == "/client/v4/accounts/acc-1/audit_logs"
    assert first.params == {
        "since": "2026-03-01T12:00:00Z",
        "before": "2026-03-01T13:00:00Z",
        "direction": "asc",
        "per_page": "1000",
        "page": "1",
        "hide_user_logs": "false",
    }
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert source.getter.requests == 3 and source.getter.retries == 0


def test_v1_can_hide_user_logs(fake: FakeCloudflare, client: httpx.Client) -> None:
    items = [v1_item(n, T0 + timedelta(seconds=n), "acc-1") for n in range(3)]
    items[1]["actor"]["type"] = "Cloudflare"
    fake.add("acc-1", items)
    source = fetcher(fake, client, "v1", hide_user_logs=True)
    assert fetch_ids(source) == [items[1]["id"]]
    assert fake.requests[0].params["hide_user_logs"] == "true"


def test_v1_stops_at_the_last_page_without_a_short_one(
    fake: FakeCloudflare, client: httpx.Client
) -> None:
    fill(fake, "v1", 2000)
    source = fetcher(fake, client, "v1", page_size=1000)
    assert [len(page) for page in source.pages(HOUR)] == [1000, 1000]
    assert len(fake.requests) == 2  # total_pages said 2: no empty third page asked for


def test_v2_follows_cursors(fake: FakeCloudflare, client: httpx.Client) -> None:
    ids = fill(fake, "v2", 2500)
    source = fetcher(fake, client, "v2", page_size=1000)
    assert fetch_ids(source) == ids
    assert len(fake.requests) == 3
    assert fake.requests[0].path == "/client/v4/accounts/acc-1/logs/audit"
    assert "cursor" not in fake.requests[0].params
    cursors = [r.params.get("cursor") for r in fake.requests[1:]]
    assert all(cursors) and cursors[0] != cursors[1]
    assert fake.requests[0].params == {
        "since": "2026-03-01T12:00:00Z",
        "before": "2026-03-01T13:00:00Z",
        "limit": "1000",
        "direction": "asc",
    }


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_window_is_since_inclusive_before_exclusive(
    api: str, fake: FakeCloudflare, client: httpx.Client
) -> None:
    ids = fill(fake, api, 10)
    window = Window(T0 + timedelta(seconds=3), T0 + timedelta(seconds=7))
    assert fetch_ids(fetcher(fake, client, api, page_size=2), window) == ids[3:7]
    micro = Window(T0 + timedelta(seconds=3), T0 + timedelta(seconds=3, microseconds=1))
    assert fetch_ids(fetcher(fake, client, api), micro) == ids[3:4]


def test_429_retry_after_is_honoured(fake: FakeCloudflare, client: httpx.Client) -> None:
    ids = fill(fake, "v2", 5)
    fake.fail_429(1, retry_after=1)
    sleeps: list[float] = []
    source = fetcher(fake, client, "v2", sleeps=sleeps)
    started = time.monotonic()
    assert fetch_ids(source) == ids
    assert time.monotonic() - started >= 1.0
    assert sleeps == [1.0]
    assert source.getter.retries == 1 and source.getter.requests == 2


def test_500s_then_success(fake: FakeCloudflare, client: httpx.Client) -> None:
    ids = fill(fake, "v1", 5)
    fake.fail_500(2)
    source = fetcher(fake, client, "v1")
    assert fetch_ids(source) == ids
    assert (source.getter.requests, source.getter.retries) == (3, 2)


def test_timeout_then_success(fake: FakeCloudflare, client: httpx.Client) -> None:
    ids = fill(fake, "v2", 5)
    fake.hang(1, 1.0)
    source = fetcher(fake, client, "v2", timeout_seconds=0.3)
    started = time.monotonic()
    assert fetch_ids(source) == ids
    assert source.getter.retries == 1
    assert time.monotonic() - started < 1.0  # gave up on the hung request


def test_gives_up_with_a_transient_error(fake: FakeCloudflare, client: httpx.Client) -> None:
    fill(fake, "v1", 5)
    fake.fail_500(3, status=503)
    source = fetcher(fake, client, "v1", max_attempts=3)
    with pytest.raises(VendorError) as caught:
        fetch_ids(source)
    assert caught.value.transient and "HTTP 503" in caught.value.message
    assert len(fake.requests) == 3


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_unsuccessful_body_is_a_permanent_error(
    api: str, fake: FakeCloudflare, client: httpx.Client
) -> None:
    fill(fake, api, 5)
    fake.fail_unsuccessful(1, [{"code": 1003, "message": "Invalid or missing account"}])
    with pytest.raises(VendorError) as caught:
        fetch_ids(fetcher(fake, client, api))
    assert not caught.value.transient
    assert "1003: Invalid or missing account" in caught.value.message
    assert len(fake.requests) == 1  # not retried


def test_bad_token_is_a_permanent_error(fake: FakeCloudflare, client: httpx.Client) -> None:
    fill(fake, "v2", 5)
    source = fetcher(fake, client, "v2", token="wrong-token-abc")
    with pytest.raises(VendorError) as caught:
        fetch_ids(source)
    exc = caught.value
    assert not exc.transient
    assert "HTTP 401" in exc.message and "10000: Authentication error" in exc.message
    assert "wrong-token-abc" not in str(exc) and "wrong-token-abc" not in repr(exc.details)
    assert len(fake.requests) == 1


def test_two_accounts_are_kept_apart(fake: FakeCloudflare, client: httpx.Client) -> None:
    first = fill(fake, "v1", 30, account="acc-a")
    second = fill(fake, "v1", 20, account="acc-b")
    assert fetch_ids(fetcher(fake, client, "v1", account="acc-a", page_size=7)) == first
    assert fetch_ids(fetcher(fake, client, "v1", account="acc-b", page_size=7)) == second
    assert not set(first) & set(second)
    paths = {r.path for r in fake.requests}
    assert paths == {
        "/client/v4/accounts/acc-a/audit_logs",
        "/client/v4/accounts/acc-b/audit_logs",
    }


def test_malformed_items_come_through_and_fail_mapping(
    fake: FakeCloudflare, client: httpx.Client
) -> None:
    good = v2_item(1, T0, "acc-1")
    broken: list[Any] = [{**v2_item(2, T0, "acc-1"), "id": ""}, "not an object"]
    fake.add("acc-1", [good, *broken])
    source = fetcher(fake, client, "v2")
    items = [raw for page in source.pages(HOUR) for raw in page]
    assert len(items) == 3
    mapped, failed = [], 0
    for raw in items:
        try:
            mapped.append(source.map_item(raw).item.id)
        except InvalidItem:
            failed += 1
    assert (mapped, failed) == ([good["id"]], 2)


def test_late_items_appear_once_visible(client: httpx.Client) -> None:
    clock = Clock(T0 + timedelta(hours=2))
    with FakeCloudflare(token=TOKEN, clock=clock) as fake:
        early = fill(fake, "v1", 3)
        late = v1_item(99, T0 + timedelta(seconds=1, microseconds=5), "acc-1")
        fake.add("acc-1", [late], visible_after=clock.now + timedelta(minutes=5))
        source = fetcher(fake, client, "v1")
        assert fetch_ids(source) == early
        clock.now += timedelta(minutes=5)
        assert fetch_ids(source) == [early[0], early[1], late["id"], early[2]]


@pytest.mark.parametrize(("api", "kind"), [("v1", CloudflareV1), ("v2", CloudflareV2)])
def test_make_fetcher_chooses_by_api(
    api: Literal["v1", "v2"], kind: type[Any], fake: FakeCloudflare, client: httpx.Client
) -> None:
    ids = fill(fake, api, 3)
    source = CloudflareSource(
        name="cf",
        account_id="acc-1",
        api=api,
        token=TOKEN,
        base_url=fake.base_url,
    )
    made = make_fetcher(source, client)
    assert isinstance(made, kind)
    assert fetch_ids(made) == ids

"""A vendor page whose JSON names a key twice: an ambiguous item is
dead-lettered with the reason and the rest of the page kept (the checkpoint
moves); a key given twice outside the items refuses the whole page (the
checkpoint stays, nothing is stored)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from tests.fake_cloudflare import v1_item, v2_item

from auditlake.core.normalize import Limits
from auditlake.core.query import parse_query
from auditlake.ingest import Ingest
from auditlake.journal.memory import MemoryEventLog
from auditlake.metrics import Metrics
from auditlake.pollers.cloudflare import make_fetcher
from auditlake.pollers.http import VendorUnavailable
from auditlake.pollers.poller import Poller, Schedule
from auditlake.pollers.state import PollerState
from auditlake.source_settings import CloudflareSource

ACCOUNT = "acc-1"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=1)


def item_text(api: str, n: int, repeat: str | None = None) -> str:
    """Item `n` as JSON text; `repeat` ("id", or "action.type") gives that
    member twice: first a forged value, then the real one."""
    item = (v1_item if api == "v1" else v2_item)(n, NOW - timedelta(minutes=30 - n), ACCOUNT)
    text = json.dumps(item)
    if repeat == "id":
        text = '{"id": "forged", ' + text[1:]
    elif repeat == "action.type":
        text = text.replace('"action": {', '"action": {"type": "forged", ', 1)
    return text


def page(api: str, items: list[str], envelope: str = "") -> bytes:
    """A page's JSON text around `items`; `envelope` is put before `result`."""
    count = len(items)
    if api == "v1":
        info = f'{{"page": 1, "per_page": 50, "count": {count}, "total_count": {count}, '
        info += '"total_pages": 1}'
    else:
        info = f'{{"count": {count}, "cursor": ""}}'
    joined = ", ".join(items)
    text = f'{{"success": true, "errors": [], {envelope}"result": [{joined}], '
    return (text + f'"result_info": {info}}}').encode()


@pytest.fixture
def poll(tmp_path: Path) -> Iterator[Callable[[str, bytes], tuple[Any, Any, Any]]]:
    opened: list[PollerState] = []

    def run(api: str, body: bytes) -> tuple[Any, MemoryEventLog, PollerState]:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})

        source = CloudflareSource(
            name=f"cf-{api}", account_id=ACCOUNT, api=api, token="t",  # type: ignore[arg-type]
            base_url="http://cloudflare.test/client/v4", page_size=50, max_attempts=1,
        )  # fmt: skip
        fetcher = make_fetcher(source, httpx.Client(transport=httpx.MockTransport(answer)))
        journal = MemoryEventLog()
        journal.start()
        state = PollerState(tmp_path / f"pollers-{len(opened)}.db")
        opened.append(state)
        schedule = Schedule(60.0, 60.0, initial_checkpoint=START)
        ingest = Ingest(journal, Metrics())
        poller = Poller(source.name, "security", fetcher, schedule, ingest=ingest,
                        state=state, limits=Limits(), clock=lambda: NOW)  # fmt: skip
        try:
            return poller.poll_once(), journal, state
        except VendorUnavailable as exc:
            return exc, journal, state

    yield run
    for state in opened:
        state.close()


def stored_count(journal: MemoryEventLog) -> int:
    return len(journal.search(parse_query("security", {"limit": "1000"})).events)


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("repeat", ["id", "action.type"])
def test_an_ambiguous_item_is_dead_lettered_and_the_rest_kept(
    poll: Callable[[str, bytes], tuple[Any, Any, Any]], api: str, repeat: str
) -> None:
    body = page(api, [item_text(api, 0), item_text(api, 1, repeat), item_text(api, 2)])
    result, journal, state = poll(api, body)
    assert (result.fetched, result.created, result.invalid) == (3, 2, 1)
    assert stored_count(journal) == 2
    assert state.checkpoint(f"cf-{api}") == NOW - timedelta(seconds=60)
    [letter] = state.dead_letters(f"cf-{api}")
    assert f"result[1].{repeat}" in letter.reason
    assert "names a key twice" in letter.reason
    item = msgspec.json.decode(letter.item)
    forged = item["id"] if repeat == "id" else item["action"]["type"]
    assert forged != "forged"  # the item as decoded (last value), the reason says the rest


@pytest.mark.parametrize(
    "envelope",
    ['"success": true, ', '"result_info": {"total_pages": 9}, ', '"result": [], '],
)
def test_a_key_given_twice_outside_the_items_refuses_the_page(
    poll: Callable[[str, bytes], tuple[Any, Any, Any]], envelope: str
) -> None:
    body = page("v1", [item_text("v1", 0), item_text("v1", 1)], envelope)
    key = envelope.split('"')[1]
    failure, journal, state = poll("v1", body)
    assert isinstance(failure, VendorUnavailable)
    assert f"the key {key!r} twice" in failure.message
    assert failure.transient
    assert stored_count(journal) == 0
    assert state.checkpoint("cf-v1") is None  # stays: a later poll asks again
    assert state.dead_letters("cf-v1") == []


def test_a_clean_page_is_kept_whole(poll: Callable[[str, bytes], tuple[Any, Any, Any]]) -> None:
    result, journal, _state = poll("v2", page("v2", [item_text("v2", n) for n in range(5)]))
    assert (result.created, result.invalid) == (5, 0)
    assert stored_count(journal) == 5

"""The Python client against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import auditlake
from auditlake import ApiError, Client
from auditlake.client import BatchResult, PublishResult, SearchPage
from auditlake.core.event import Actor, Event, EventInput, Target
from auditlake.errors import AuditlakeError

if TYPE_CHECKING:
    from conftest import LiveServer

# The WorkOS example event (tests/fixtures/workos-event.json)
WORKOS_EVENT: dict[str, Any] = {
    "action": "user.signed_in",
    "occurred_at": "2022-08-29T19:47:52.336Z",
    "actor": {"type": "user", "id": "user_01GBNJC3MX9ZZJW1FSTF4C5938"},
    "targets": [{"type": "team", "id": "team_01GBNJD4MKHVKJGEWK42JNMBGS"}],
    "context": {"location": "123.123.123.123", "user_agent": "Chrome/104.0.0.0"},
}
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.key("acme")) as c:
        yield c


def record_requests(client: Client) -> list[httpx.Request]:
    """Every request the client sends from now on."""
    seen: list[httpx.Request] = []
    client._http.event_hooks["request"].append(seen.append)
    return seen


def event(i: int, action: str = "user.updated", actor: str = "u_1") -> dict[str, Any]:
    moment = BASE + timedelta(seconds=i)
    return {"action": action, "actor": {"id": actor}, "occurred_at": moment.isoformat()}


def test_the_package_exports_the_client() -> None:
    assert auditlake.Client is Client
    assert issubclass(auditlake.ApiError, AuditlakeError)


def test_publish_reports_created_then_duplicate(client: Client) -> None:
    first = client.publish({"id": "evt_1", "action": "user.created"})
    again = client.publish({"id": "evt_1", "action": "user.created"})
    assert first == PublishResult("evt_1", "created")
    assert again == PublishResult("evt_1", "duplicate")


def test_an_idempotency_key_makes_a_publish_without_id_repeatable(client: Client) -> None:
    struct = EventInput(action="user.created", actor=Actor(id="u_9"), targets=[Target(id="t")])
    first = client.publish(struct, idempotency_key="req-42")
    again = client.publish(struct, idempotency_key="req-42")
    assert first.status == "created"
    assert again == PublishResult(first.id, "duplicate")
    assert client.get(first.id).actor == Actor(id="u_9")


def test_publish_many_splits_big_lists_and_reports_duplicates_on_resend(client: Client) -> None:
    requests = record_requests(client)
    events = [event(i) for i in range(2500)]

    first = client.publish_many(events, idempotency_key="import-7")
    again = client.publish_many(events, idempotency_key="import-7")

    assert [r.url.path for r in requests] == ["/v1/events/batch"] * 6
    assert isinstance(first, BatchResult)
    assert (first.created, first.duplicates, len(first.results)) == (2500, 0, 2500)
    assert len({r.id for r in first.results}) == 2500
    assert (again.created, again.duplicates) == (0, 2500)
    assert [r.id for r in again.results] == [r.id for r in first.results]
    assert {r.status for r in again.results} == {"duplicate"}


def test_publish_many_with_ids_and_a_small_batch_size(client: Client) -> None:
    requests = record_requests(client)
    events = [{**event(i), "id": f"evt_{i}"} for i in range(25)]
    client.publish_many(events[:10])

    result = client.publish_many(events, batch_size=10)

    assert len(requests) == 1 + 3
    assert (result.created, result.duplicates) == (15, 10)
    assert [r.id for r in result.results] == [f"evt_{i}" for i in range(25)]
    assert client.publish_many([]) == BatchResult([], 0, 0)
    with pytest.raises(ValueError, match="batch_size"):
        client.publish_many(events, batch_size=1001)


def test_get_round_trips_a_workos_event(client: Client) -> None:
    published = client.publish(WORKOS_EVENT)

    stored = client.get(published.id)

    assert isinstance(stored, Event)
    assert (stored.id, stored.tenant, stored.source) == (published.id, "acme", "api")
    assert stored.action == "user.signed_in"
    assert stored.occurred_at == datetime(2022, 8, 29, 19, 47, 52, 336000, tzinfo=UTC)
    assert stored.actor == Actor(id="user_01GBNJC3MX9ZZJW1FSTF4C5938", type="user")
    assert stored.targets == [Target(id="team_01GBNJD4MKHVKJGEWK42JNMBGS", type="team")]
    assert stored.context is not None
    assert stored.context.location == "123.123.123.123"
    assert stored.context.user_agent == "Chrome/104.0.0.0"
    assert stored.outcome == "success"


def test_get_of_a_missing_id_raises_not_found(client: Client) -> None:
    with pytest.raises(ApiError) as caught:
        client.get("evt_missing")
    error = caught.value
    assert (error.status, error.code, error.transient) == (404, "not_found", False)
    assert isinstance(error, AuditlakeError)
    assert isinstance(error.body, dict)
    assert error.body["error"]["code"] == "not_found"


def test_search_follows_cursors_across_pages_with_filters(client: Client) -> None:
    wanted = [event(i) for i in range(25)]
    others = [event(100 + i, actor="u_2") for i in range(5)]
    others += [event(200 + i, action="team.created") for i in range(5)]
    client.publish_many(wanted + others)
    requests = record_requests(client)

    found = list(client.search(page_size=10, action="user.*", actor_id="u_1"))

    assert len(requests) >= 3
    assert len(found) == 25
    assert all(e.action == "user.updated" and e.actor == Actor(id="u_1") for e in found)
    moments = [e.occurred_at for e in found]
    assert moments == sorted(moments, reverse=True)
    assert len({e.id for e in found}) == 25


def test_search_takes_datetimes_order_and_single_pages(client: Client) -> None:
    client.publish_many([event(i) for i in range(10)])
    since, until = BASE + timedelta(seconds=2), (BASE + timedelta(seconds=5)).replace(tzinfo=None)

    found = list(client.search(since=since, until=until, order="asc"))
    page = client.search_page(limit=4, action="user.updated")
    rest = client.search_page(limit=4, action="user.updated", cursor=page.next_cursor)

    assert [e.occurred_at for e in found] == [BASE + timedelta(seconds=s) for s in (2, 3, 4)]
    assert isinstance(page, SearchPage)
    assert len(page.data) == 4
    assert page.next_cursor is not None
    assert {e.id for e in page.data}.isdisjoint(e.id for e in rest.data)


def test_export_streams_every_matching_event_as_ndjson(client: Client) -> None:
    result = client.publish_many([event(i) for i in range(30)] + [event(99, actor="u_2")])

    body = b"".join(client.export("ndjson", actor_id="u_1"))

    lines = body.decode().splitlines()
    assert len(lines) == 30
    ids = {json.loads(line)["id"] for line in lines}
    assert ids == {r.id for r in result.results[:30]}
    csv = b"".join(client.export("csv", actor_id="u_2")).decode().splitlines()
    assert len(csv) == 2


def test_export_takes_format_by_its_api_name(client: Client) -> None:
    client.publish_many([{"action": "now.here", "id": f"n{i}"} for i in range(3)])  # now
    client.publish(event(0))  # long before the last 15 minutes
    csv = b"".join(client.export(format="csv", since="15m")).decode().splitlines()
    assert csv[0].startswith("id,") and len(csv) == 4  # was: NDJSON, format= sent as a filter
    ndjson = b"".join(client.export(format="ndjson", since="15m", order="asc")).decode()
    assert [json.loads(line)["id"] for line in ndjson.splitlines()] == ["n0", "n1", "n2"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.export(fmt="csv"),  # the old name
        lambda c: c.export(format="csv", actor="u_1"),
        lambda c: c.search_page(format="csv"),  # an export's, not a search's
        lambda c: c.search_page(colour="red"),
        lambda c: c.search(limit=5),  # search's page size is page_size
        lambda c: c.search(acton="user.*"),
    ],
)
def test_an_unknown_filter_is_a_type_error_at_the_call(client: Client, call: Any) -> None:
    with pytest.raises(TypeError, match="unknown filter") as caught:
        call(client)  # no next(): refused before any request is made
    assert "action" in str(caught.value)  # and the filters it could have been


def test_export_errors_are_raised_when_iterating(client: Client) -> None:
    chunks = client.export("xml")
    with pytest.raises(ApiError) as caught:
        next(chunks)
    assert (caught.value.status, caught.value.code) == (400, "malformed")


def test_an_invalid_event_raises_422_with_details(client: Client) -> None:
    with pytest.raises(ApiError) as caught:
        client.publish({"actor": {"id": "u_1"}})
    error = caught.value
    assert (error.status, error.code) == (422, "invalid")
    assert any(problem["field"] == "action" for problem in error.details)
    assert "action" in str(error)

    with pytest.raises(ApiError) as batch:
        client.publish_many([event(0), {"action": "  "}])
    assert batch.value.details == [{"field": "action", "message": "must not be empty", "index": 1}]


def test_a_read_only_key_may_not_publish(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.key("acme", "read")) as client:
        with pytest.raises(ApiError) as caught:
            client.publish(event(0))
        assert list(client.search()) == []
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    # One shape for every status: a list of objects, each with a message.
    assert caught.value.details == [{"message": "needs the 'ingest' scope", "scopes": ["read"]}]


def test_a_wrong_key_raises_401_without_leaking_it(live_server: LiveServer) -> None:
    secret = "al_000000000000_" + "x" * 43
    with Client(live_server.url, secret) as client, pytest.raises(ApiError) as caught:
        client.get("evt_1")
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")
    assert caught.value.transient is False
    assert secret not in str(caught.value) + repr(caught.value)


def test_an_admin_key_reads_another_tenant(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.key("root", "admin")) as client:
        published = client.publish({**event(0), "tenant": "beta"})
        assert client.get(published.id, tenant="beta").tenant == "beta"
        assert [e.id for e in client.search(tenant="beta")] == [published.id]


def test_connection_refused_is_a_transient_error() -> None:
    secret = "al_000000000000_" + "y" * 43
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        with Client(url, secret, timeout=2, retries=1) as client, pytest.raises(ApiError) as caught:
            client.publish(event(0))
    error = caught.value
    assert (error.status, error.code, error.transient) == (0, "connection", True)
    assert url in error.message
    assert secret not in str(error) + repr(error)


def mock_client(monkeypatch: pytest.MonkeyPatch, answers: list[int], retries: int) -> Client:
    """A client whose server answers `answers` in turn, with sleeping switched off."""

    def reply(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0)
        if status >= 500:
            body = {"error": {"code": "overloaded", "message": "busy", "details": None}}
            return httpx.Response(status, json=body, headers={"retry-after": "0.01"})
        return httpx.Response(status, json={"id": "e1", "status": "created"})

    client = Client("http://auditlake.test", "k", retries=retries)
    client._http.close()
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(reply))
    monkeypatch.setattr("auditlake.client._wait", lambda error, attempt: 0.0)
    return client


def test_retries_transient_answers_then_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [503, 503, 201]
    with mock_client(monkeypatch, answers, retries=2) as client:
        assert client.publish(event(0)) == PublishResult("e1", "created")
    assert answers == []


def test_gives_up_after_the_retries_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [503, 503, 201]
    with mock_client(monkeypatch, answers, retries=1) as client, pytest.raises(ApiError) as caught:
        client.publish(event(0))
    assert (caught.value.code, caught.value.retry_after, caught.value.transient) == (
        "overloaded",
        0.01,
        True,
    )
    assert answers == [201]


def test_a_lost_answer_is_retried_only_when_it_cannot_store_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [502, 502, 201]
    with mock_client(monkeypatch, answers, retries=3) as client:
        with pytest.raises(ApiError) as caught:
            client.publish(event(0))  # no id, no idempotency key: a 502 may have stored it
        assert caught.value.status == 502
        assert answers == [502, 201]
        assert client.publish(event(0), idempotency_key="k1").status == "created"
    assert answers == []


def test_the_wait_honours_retry_after_within_a_bound() -> None:
    from auditlake.client import MAX_RETRY_WAIT, _wait

    assert _wait(ApiError(503, "overloaded", "busy", retry_after=0.5), 1) == 0.5
    assert _wait(ApiError(503, "overloaded", "busy", retry_after=3600), 1) == MAX_RETRY_WAIT
    assert 0 < _wait(ApiError(0, "connection", "down"), 3) <= 0.8

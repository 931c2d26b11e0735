"""Timestamps over HTTP: RFC 3339 edge cases in `occurred_at`, and `since` /
`until` as times, dates and durations before now, in search, paging, export
and the Python client. (Every input against every case: tests/unit/test_times.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from starlette.testclient import TestClient

from auditlake import ApiError, Client
from auditlake.core.times import ACCEPTED_FORMS
from auditlake.runtime import Services
from auditlake.web.app import create_app

if TYPE_CHECKING:
    from conftest import LiveServer

Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    secret = services.keys.create("acme", ["ingest", "read"], "t")[1]
    with TestClient(create_app(services)) as client:
        yield client, {"authorization": f"Bearer {secret}"}


def publish(api: Api, events: list[dict[str, Any]]) -> Any:
    client, headers = api
    response = client.post("/v1/events/batch", json={"events": events}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def search(api: Api, **params: str) -> Any:
    client, headers = api
    response = client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# (sent, stored): each app start costs seconds, so one test sends them all.
STORED = [
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999Z"),  # a leap second
    ("2017-01-01T05:29:60+05:30", "2016-12-31T23:59:59.999999Z"),  # the same, in India
    ("2016-12-31t23:59:59.123456789z", "2016-12-31T23:59:59.123456Z"),  # cut, not rounded
    ("2016-12-31T23:59:59.9999999Z", "2016-12-31T23:59:59.999999Z"),  # not into 2017
    ("2026-11-01 08:00:00-00:00", "2026-11-01T08:00:00Z"),
    ("2026-12-31T20:00:00-08:00", "2027-01-01T04:00:00Z"),
]
# (sent, words of the refusal)
REFUSED = [
    ("2016-12-31T23:59:59", "offset"),
    ("2016-02-30T00:00:00Z", "day is out of range"),
    ("2016-12-31T23:59:61Z", "second"),
    ("9999-12-31T23:00:00-05:00", "0001-9999"),  # past 9999 in UTC: 422, not 500
    ("\u0662\u0660\u0661\u0666-12-31T23:59:59Z", "RFC 3339"),  # Arabic-Indic digits
    ("1969-12-31T23:59:59Z", "1970"),
]


def test_occurred_at_edge_cases_are_stored_as_rfc3339_says(api: Api) -> None:
    client, headers = api
    for sent, stored in STORED:
        body = {"action": "a", "occurred_at": sent}
        response = client.post("/v1/events", json=body, headers=headers)
        assert response.status_code == 201, response.text
        got = client.get(f"/v1/events/{response.json()['id']}", headers=headers)
        assert got.json()["occurred_at"] == stored, sent


def test_bad_occurred_at_is_a_422_naming_the_field(api: Api) -> None:
    client, headers = api
    for sent, reason in REFUSED:
        batch = {"events": [{"action": "ok"}, {"action": "a", "occurred_at": sent}]}
        response = client.post("/v1/events/batch", json=batch, headers=headers)
        assert response.status_code == 422, response.text
        (problem,) = response.json()["error"]["details"]
        assert (problem["field"], problem["index"]) == ("occurred_at", 1)
        assert reason in problem["message"], sent
    assert search(api)["data"] == []  # all or nothing


def test_since_and_until_take_times_dates_and_durations(api: Api) -> None:
    now = datetime.now(UTC)
    ages = {"e-3d": timedelta(days=3), "e-2h": timedelta(hours=2), "e-20m": timedelta(minutes=20)}
    publish(
        api, [{"id": i, "action": "a", "occurred_at": stamp(now - age)} for i, age in ages.items()]
    )
    ids = lambda **params: [e["id"] for e in search(api, order="asc", **params)["data"]]  # noqa: E731
    assert ids(since="1h") == ["e-20m"]
    assert ids(since="3h") == ["e-2h", "e-20m"]
    assert ids(since="4d", until="1h") == ["e-3d", "e-2h"]
    assert ids(since="180m", until="60m") == ["e-2h"]
    assert ids(since="1w") == ["e-3d", "e-2h", "e-20m"]
    assert ids(since=(now - timedelta(days=3)).date().isoformat(), until="1d") == ["e-3d"]
    assert ids(until=(now + timedelta(days=1)).date().isoformat(), since="30m") == ["e-20m"]


def test_every_page_of_a_relative_search_has_the_same_window(api: Api) -> None:
    now = datetime.now(UTC)
    publish(api, [{"id": f"e{n}", "action": "a", "occurred_at": stamp(now - timedelta(minutes=n))}
                  for n in range(1, 6)])  # fmt: skip
    seen: list[str] = []
    page = search(api, since="1h", limit="2")
    while True:
        seen += [e["id"] for e in page["data"]]
        if page["next_cursor"] is None:
            break
        page = search(api, since="1h", limit="2", cursor=page["next_cursor"])
    assert seen == ["e1", "e2", "e3", "e4", "e5"]
    client, headers = api
    other = client.get("/v1/events", params={"since": "2h", "limit": "2",
                       "cursor": search(api, since="1h", limit="2")["next_cursor"]},
                       headers=headers)  # fmt: skip
    assert other.status_code == 400 and "other filters" in other.text


@pytest.mark.parametrize("path", ["/v1/events", "/v1/export"])
def test_other_forms_are_a_400_naming_the_accepted_ones(api: Api, path: str) -> None:
    client, headers = api
    for bad in ("yesterday", "1h30m", "15M", "-5m", "2026-02-30", "99999999w", "2026-11-01T10:00"):
        for name in ("since", "until"):
            response = client.get(path, params={name: bad}, headers=headers)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "malformed"
            assert error["details"][0]["field"] == name
            assert ACCEPTED_FORMS in error["message"]


def test_the_client_takes_dates_durations_and_text(live_server: LiveServer) -> None:
    now = datetime.now(UTC)
    with Client(live_server.url, live_server.key("acme")) as client:
        client.publish_many([
            {"id": "old", "action": "a", "occurred_at": stamp(now - timedelta(days=2))},
            {"id": "new", "action": "a", "occurred_at": stamp(now - timedelta(minutes=5))},
        ])  # fmt: skip
        found = lambda **f: [e.id for e in client.search(order="asc", **f)]  # noqa: E731
        assert found(since=timedelta(hours=1)) == ["new"]
        assert found(since="3d", until=timedelta(days=1)) == ["old"]
        assert found(since=(now - timedelta(days=3)).date()) == ["old", "new"]
        assert found(until=date(1999, 1, 1)) == []
        with pytest.raises(ApiError) as refused:
            found(since="last week")
        assert (refused.value.status, refused.value.code) == (400, "malformed")
        with pytest.raises(ValueError, match="negative"):
            found(since=timedelta(hours=-1))

"""Cloudflare audit-log items -> events (v1 and v2, on the vendor's shared
samples), and the JSON getter's retries on an in-memory transport."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import msgspec
import pytest
from tests.fake_cloudflare import v1_item, v2_item
from tests.fixtures import FIXTURES

from auditlake.core.event import Actor, Context, Target
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.pollers.base import InvalidItem, VendorError
from auditlake.pollers.cloudflare_mapping import METADATA_BUDGET, map_v1, map_v2
from auditlake.pollers.http import JsonGetter, VendorUnavailable

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
TOKEN = "cf-secret-token-1234567890"
URL = "https://api.example.test/client/v4/accounts/acc1/audit_logs"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


# --- mapping -------------------------------------------------------------------------


def test_v1_sample_maps_every_field() -> None:
    raw = sample("cloudflare-v1-item.json")
    mapped = map_v1(raw, ACCOUNT)
    event = mapped.item
    assert event.id == "d5b0f326-1232-4452-8858-1089bd7168ef"
    assert event.action == "change_setting"
    assert mapped.occurred_at == datetime(2017, 4, 26, 17, 31, 7, tzinfo=UTC)
    assert event.occurred_at == "2017-04-26T17:31:07Z"
    assert event.outcome == "success"
    assert event.tenant is None
    assert event.actor == Actor(
        id="f6b5de0326bb5182b8a4840ee01ec774",
        type="user",
        email="michelle@example.com",
        ip="198.41.129.166",
    )
    # The resource is the zone named in metadata.zone_name: one target, not two.
    assert event.targets == [
        Target(id="023e105f4ecef8ad9ca31a8372d0c353", type="zone", name="example.com")
    ]
    assert event.context == Context(ip="198.41.129.166")
    assert event.metadata == {
        "metadata": raw["metadata"],
        "new_value": "low",
        "old_value": "high",
        "interface": "API",
        "owner": {"id": "023e105f4ecef8ad9ca31a8372d0c353"},
    }
    assert mapped.provenance.source == f"cloudflare:{ACCOUNT}"
    assert mapped.provenance.raw == raw


def test_v1_page_sample_items_map() -> None:
    page = sample("cloudflare-v1-page.json")
    assert [map_v1(item, ACCOUNT).item.id for item in page["result"]] == [
        "d5b0f326-1232-4452-8858-1089bd7168ef"
    ]


def test_v2_sample_maps_every_field() -> None:
    raw = sample("cloudflare-v2-item.json")
    mapped = map_v2(raw, ACCOUNT)
    event = mapped.item
    assert event.id == "f174be97-19b1-40d6-954d-70cd5fbd52db"
    assert event.action == "create"
    assert mapped.occurred_at == datetime(2024, 4, 26, 17, 31, 7, tzinfo=UTC)
    assert event.occurred_at == "2024-04-26T17:31:07Z"
    assert event.outcome == "success"
    # Not a token: no name; empty token fields are left out of the metadata.
    assert event.actor == Actor(
        id="f6b5de0326bb5182b8a4840ee01ec774",
        type="user",
        email="alice@example.com",
        ip="198.41.129.166",
        metadata={"context": "dash"},
    )
    # The zone has neither id nor name: no zone target.
    assert event.targets == [Target(id="ab12cd34", type="member", name="members")]
    assert event.context == Context(ip="198.41.129.166", user_agent="Mozilla/5.0")
    assert event.metadata == {
        "description": "Add Member",
        "account": {"id": ACCOUNT, "name": "Example Account"},
        "resource_scope": "accounts",
        "product": "members",
        "request": {"email": "bob@example.com"},
        "response": {"status": "pending"},
        "raw_request": raw["raw"],
    }
    assert mapped.provenance.source == f"cloudflare:{ACCOUNT}"
    assert mapped.provenance.raw == raw


def test_v2_page_sample_items_map() -> None:
    page = sample("cloudflare-v2-page.json")
    ids = [map_v2(item, ACCOUNT).item.id for item in page["result"]]
    assert ids == ["f174be97-19b1-40d6-954d-70cd5fbd52db"]


def test_mapped_samples_pass_normalization() -> None:
    mapped = [
        map_v1(sample("cloudflare-v1-item.json"), ACCOUNT),
        map_v2(sample("cloudflare-v2-item.json"), ACCOUNT),
    ]
    origin = Origin(tenant="acme", caller="poller", source="cloudflare", received_at=NOW)
    stored = normalize(
        [m.item for m in mapped], origin, Limits(), provenance=[m.provenance for m in mapped]
    )
    assert [s.event.source for s in stored] == [f"cloudflare:{ACCOUNT}"] * 2
    assert stored[0].event.raw == sample("cloudflare-v1-item.json")


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        (True, "success"),
        (False, "failure"),
        (None, "failure"),
        ("success", "success"),
        ("failure", "failure"),
        ("Failed", "failure"),
        ("false", "failure"),
        ("", "failure"),
        ("partial", "success"),
    ],
)
def test_outcome_variants(result: Any, outcome: str) -> None:
    v1 = sample("cloudflare-v1-item.json")
    v1["action"]["result"] = result
    v2 = sample("cloudflare-v2-item.json")
    v2["action"]["result"] = result
    assert map_v1(v1, ACCOUNT).item.outcome == outcome
    assert map_v2(v2, ACCOUNT).item.outcome == outcome


def test_missing_result_is_failure() -> None:
    raw = sample("cloudflare-v2-item.json")
    del raw["action"]["result"]
    assert map_v2(raw, ACCOUNT).item.outcome == "failure"


def test_token_actor_is_named_after_the_token() -> None:
    raw = sample("cloudflare-v2-item.json")
    raw["actor"].update(context="api_token", token_id="tok-1", token_name="ci-deploy")
    actor = map_v2(raw, ACCOUNT).item.actor
    assert actor is not None
    assert actor.name == "ci-deploy"
    assert actor.metadata == {
        "context": "api_token",
        "token_id": "tok-1",
        "token_name": "ci-deploy",
    }


def test_actor_id_falls_back_to_email_then_ip() -> None:
    raw = sample("cloudflare-v2-item.json")
    raw["actor"]["id"] = ""
    actor = map_v2(raw, ACCOUNT).item.actor
    assert actor is not None and actor.id == "alice@example.com"
    raw["actor"]["email"] = ""
    actor = map_v2(raw, ACCOUNT).item.actor
    assert actor is not None and actor.id == "198.41.129.166" and actor.email is None


def test_item_without_actor_has_no_actor_or_context() -> None:
    raw = sample("cloudflare-v1-item.json")
    del raw["actor"]
    event = map_v1(raw, ACCOUNT).item
    assert event.actor is None and event.context is None


def test_an_actor_without_id_email_or_ip_is_left_out_not_dead_lettered() -> None:
    raw = sample("cloudflare-v1-item.json")
    raw["actor"] = {"type": "system"}
    mapped = map_v1(raw, ACCOUNT)
    assert mapped.item.actor is None and mapped.provenance.raw["actor"] == {"type": "system"}


def test_v2_zone_is_a_target() -> None:
    raw = sample("cloudflare-v2-item.json")
    raw["zone"] = {"id": "zone-9", "name": "example.org"}
    targets = map_v2(raw, ACCOUNT).item.targets
    assert targets[1] == Target(id="zone-9", type="zone", name="example.org")
    raw["zone"] = {"id": "", "name": "example.org"}
    assert map_v2(raw, ACCOUNT).item.targets[1] == Target(
        id="example.org", type="zone", name="example.org"
    )


def test_v1_zone_name_is_a_target_when_the_resource_is_not_the_zone() -> None:
    raw = sample("cloudflare-v1-item.json")
    raw["resource"] = {"id": "rec-1", "type": "dns_record"}
    assert map_v1(raw, ACCOUNT).item.targets == [
        Target(id="rec-1", type="dns_record"),
        Target(id="example.com", type="zone", name="example.com"),
    ]


def test_resource_without_id_uses_its_name_or_is_skipped() -> None:
    raw = sample("cloudflare-v2-item.json")
    raw["resource"]["id"] = ""
    assert map_v2(raw, ACCOUNT).item.targets == [
        Target(id="members", type="member", name="members")
    ]
    raw["resource"]["product"] = ""
    assert map_v2(raw, ACCOUNT).item.targets == []


def test_metadata_leaves_out_empty_values() -> None:
    raw = sample("cloudflare-v1-item.json")
    raw.update(newValue="", oldValue=None, interface="")
    metadata = map_v1(raw, ACCOUNT).item.metadata
    assert metadata is not None
    assert set(metadata) == {"metadata", "owner"}


def test_metadata_over_the_cap_drops_the_large_value() -> None:
    raw = sample("cloudflare-v1-item.json")
    raw["newValue"] = "x" * 70_000
    raw["oldValue"] = "y" * 50_000
    metadata = map_v1(raw, ACCOUNT).item.metadata
    assert metadata is not None
    assert "new_value" not in metadata
    assert metadata["old_value"] == "y" * 50_000
    assert metadata["truncated"] == ["new_value"]
    assert len(msgspec.json.encode(metadata)) <= METADATA_BUDGET
    # The provenance keeps the whole item.
    assert map_v1(raw, ACCOUNT).provenance.raw["newValue"] == "x" * 70_000


def _v1_without(*path: str) -> dict[str, Any]:
    raw = sample("cloudflare-v1-item.json")
    node = raw
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return raw


def _v1_with(value: Any, *path: str) -> dict[str, Any]:
    raw = sample("cloudflare-v1-item.json")
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (["not", "an", "object"], ""),
        ("text", ""),
        (None, ""),
        (_v1_without("id"), "id"),
        (_v1_with("", "id"), "id"),
        (_v1_with(42, "id"), "id"),
        (_v1_without("when"), "when"),
        (_v1_with("yesterday", "when"), "when"),
        (_v1_with(1714150267, "when"), "when"),
        (_v1_without("action"), "action"),
        (_v1_with("create", "action"), "action"),
        (_v1_without("action", "type"), "action.type"),
        (_v1_with(["x"], "action", "type"), "action.type"),
        (_v1_with("someone", "actor"), "actor"),
    ],
)
def test_invalid_v1_items(raw: Any, field: str) -> None:
    with pytest.raises(InvalidItem) as caught:
        map_v1(raw, ACCOUNT)
    assert caught.value.details == {"field": field}
    assert not caught.value.transient
    if field:
        assert f"'{field}'" in caught.value.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda raw: raw["action"].pop("time"), "action.time"),
        (lambda raw: raw["action"].update(time="2024-13-45T00:00:00Z"), "action.time"),
        (lambda raw: raw.update(id=None), "id"),
        (lambda raw: raw["action"].update(type=""), "action.type"),
    ],
)
def test_invalid_v2_items(change: Callable[[dict[str, Any]], Any], field: str) -> None:
    raw = sample("cloudflare-v2-item.json")
    change(raw)
    with pytest.raises(InvalidItem) as caught:
        map_v2(raw, ACCOUNT)
    assert caught.value.details == {"field": field}


def test_times_with_offsets_and_fractions_are_read_as_utc() -> None:
    raw = _v1_with("2024-04-26T19:31:07.123456+02:00", "when")
    assert map_v1(raw, ACCOUNT).occurred_at == datetime(2024, 4, 26, 17, 31, 7, 123456, tzinfo=UTC)


def test_fake_items_have_the_sample_shapes() -> None:
    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        return type(value).__name__

    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert shape(v1_item(3, when, ACCOUNT)) == shape(sample("cloudflare-v1-item.json"))
    assert shape(v2_item(3, when, ACCOUNT)) == shape(sample("cloudflare-v2-item.json"))
    assert v1_item(3, when, "a")["id"] != v1_item(3, when, "b")["id"] != v1_item(4, when, "a")["id"]
    token = map_v2(v2_item(4, when, ACCOUNT), ACCOUNT).item.actor
    assert token is not None and token.name == "deploy-4"


# --- JsonGetter ----------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Scripted:
    """A transport answering with `script` in order (a Response, or an exception to raise)."""

    def __init__(self, *script: httpx.Response | Exception) -> None:
        self.script: Iterator[httpx.Response | Exception] = iter(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = next(self.script)
        if isinstance(step, Exception):
            raise step
        return step


def getter_for(
    transport: Scripted, *, max_attempts: int = 4, max_backoff: float = 60.0, jitter: float = 1.0
) -> tuple[JsonGetter, list[float]]:
    sleeps: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(transport))
    getter = JsonGetter(
        client,
        token=TOKEN,
        timeout=5.0,
        max_attempts=max_attempts,
        max_backoff=max_backoff,
        sleep=sleeps.append,
        random=lambda: jitter,
    )
    return getter, sleeps


def ok(body: Any = None) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "result": [] if body is None else body})


def cf_error(status: int, *errors: tuple[int, str], **headers: str) -> httpx.Response:
    body = {"success": False, "errors": [{"code": c, "message": m} for c, m in errors]}
    return httpx.Response(status, json=body, headers=headers)


def timeout() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("timed out")


def test_sends_the_bearer_token_and_params() -> None:
    transport = Scripted(ok([1, 2]))
    getter, sleeps = getter_for(transport)
    assert getter.get(URL, {"page": 2, "direction": "asc"}) == {"success": True, "result": [1, 2]}
    request = transport.requests[0]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.url.params["page"] == "2" and request.url.params["direction"] == "asc"
    assert (getter.requests, getter.retries, sleeps) == (1, 0, [])


def test_retry_after_seconds_is_honoured() -> None:
    transport = Scripted(cf_error(429, (971, "slow down"), **{"Retry-After": "7"}), ok())
    getter, sleeps = getter_for(transport, jitter=0.01)
    getter.get(URL, {})
    assert sleeps == [7.0]
    assert (getter.requests, getter.retries) == (2, 1)


def test_retry_after_date_is_honoured_on_503() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    transport = Scripted(httpx.Response(503, headers={"Retry-After": when}), ok())
    getter, sleeps = getter_for(transport)
    getter.get(URL, {})
    assert len(sleeps) == 1 and 27.0 <= sleeps[0] <= 30.0


def test_retry_after_is_capped_at_max_backoff() -> None:
    transport = Scripted(httpx.Response(429, headers={"Retry-After": "3600"}), ok())
    getter, sleeps = getter_for(transport, max_backoff=20.0)
    getter.get(URL, {})
    assert sleeps == [20.0]


def test_retry_after_on_500_is_ignored_for_backoff() -> None:
    transport = Scripted(httpx.Response(500, headers={"Retry-After": "30"}), ok())
    getter, sleeps = getter_for(transport, jitter=1.0)
    getter.get(URL, {})
    assert sleeps == [0.5]


def test_backoff_is_exponential_capped_with_full_jitter() -> None:
    transport = Scripted(*[httpx.Response(502)] * 6, ok())
    getter, sleeps = getter_for(transport, max_attempts=7, max_backoff=5.0, jitter=1.0)
    getter.get(URL, {})
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    transport = Scripted(*[httpx.Response(502)] * 3, ok())
    getter, sleeps = getter_for(transport, max_backoff=5.0, jitter=0.25)
    getter.get(URL, {})
    assert sleeps == [0.125, 0.25, 0.5]


def test_5xx_then_success() -> None:
    transport = Scripted(httpx.Response(500), httpx.Response(503), ok([7]))
    getter, sleeps = getter_for(transport)
    assert getter.get(URL, {})["result"] == [7]
    assert (getter.requests, getter.retries, len(sleeps)) == (3, 2, 2)


def test_timeouts_and_connection_errors_are_retried() -> None:
    transport = Scripted(timeout(), httpx.ConnectError("refused"), ok([1]))
    getter, _sleeps = getter_for(transport)
    assert getter.get(URL, {})["result"] == [1]
    assert getter.retries == 2


def test_gives_up_after_max_attempts_with_a_transient_error() -> None:
    transport = Scripted(*[httpx.Response(503)] * 3)
    getter, sleeps = getter_for(transport, max_attempts=3)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {})
    exc = caught.value
    assert isinstance(exc, VendorUnavailable) and exc.transient
    assert "HTTP 503" in exc.message and "3 attempts" in exc.message
    assert (
        exc.details["status"] == 503
        and exc.details["path"] == "/client/v4/accounts/acc1/audit_logs"
    )
    assert len(sleeps) == 2 and getter.requests == 3


def test_gives_up_on_timeouts_naming_the_kind() -> None:
    transport = Scripted(timeout(), timeout())
    getter, _sleeps = getter_for(transport, max_attempts=2)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {})
    assert caught.value.transient
    assert "timeout (ReadTimeout)" in caught.value.message


def test_401_is_permanent_with_cloudflare_messages() -> None:
    transport = Scripted(cf_error(401, (10000, "Authentication error")))
    getter, sleeps = getter_for(transport)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {})
    exc = caught.value
    assert not exc.transient
    assert "HTTP 401" in exc.message and "10000: Authentication error" in exc.message
    assert exc.details["errors"] == ["10000: Authentication error"]
    assert (getter.requests, sleeps) == (1, [])


def test_404_without_a_json_body_is_permanent() -> None:
    transport = Scripted(httpx.Response(404, text="not here"))
    getter, _sleeps = getter_for(transport)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {})
    assert not caught.value.transient and "HTTP 404" in caught.value.message


def test_2xx_that_is_not_json_is_transient() -> None:
    transport = Scripted(httpx.Response(200, text="<html>maintenance</html>"))
    getter, _sleeps = getter_for(transport)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {})
    assert caught.value.transient and "not JSON" in caught.value.message


@pytest.mark.parametrize(
    "script",
    [
        [cf_error(403, (9109, f"token {TOKEN} may not read audit logs"))],
        [cf_error(500, (10001, f"echo Bearer {TOKEN}"))] * 2,
        [timeout()] * 2,
        [httpx.ConnectError(f"refused Bearer {TOKEN}")] * 2,
        [httpx.Response(200, text=f"oops {TOKEN}")],
    ],
)
def test_the_token_never_appears_in_errors(script: list[httpx.Response | Exception]) -> None:
    getter, _sleeps = getter_for(Scripted(*copy.copy(script)), max_attempts=2)
    with pytest.raises(VendorError) as caught:
        getter.get(URL, {"page": 1})
    exc = caught.value
    for text in (str(exc), exc.message, repr(exc.details), repr(exc.to_body())):
        assert TOKEN not in text

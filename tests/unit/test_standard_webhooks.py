"""Standard Webhooks verification against the reference implementation's signer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from auditlake.errors import ConfigError, Forbidden, Unauthenticated
from auditlake.source_settings import WebhookAuth
from auditlake.web.webhooks import StandardWebhookVerifier

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
NOW = 1_714_564_800  # 2024-05-01 12:00:00 UTC
BODY = b'{"specversion":"1.0","type":"dev.chainguard.registry.pull.v1","id":"e1"}'


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(
    clock: Clock | None = None, secret: str = SECRET, remember: int = 100_000
) -> StandardWebhookVerifier:
    return StandardWebhookVerifier(
        WebhookAuth(secret=secret), clock=clock or Clock(), remember=remember
    )


def signed(
    msg_id: str = "msg_1", body: bytes = BODY, at: float = NOW, secret: str = SECRET
) -> dict[str, str]:
    """The three headers, signed by the reference implementation."""
    moment = datetime.fromtimestamp(at, UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signature,
    }


def test_accepts_a_reference_signature() -> None:
    assert verifier().verify(signed(), BODY) == "msg_1"


def test_accepts_a_secret_without_the_prefix() -> None:
    bare = SECRET.removeprefix("whsec_").rstrip("=")
    assert verifier(secret=bare).verify(signed(), BODY) == "msg_1"


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in signed().items()}
    assert verifier().verify(headers, BODY) == "msg_1"


def test_rejects_the_wrong_secret() -> None:
    with pytest.raises(Forbidden, match="signature is invalid"):
        verifier().verify(signed(secret=OTHER_SECRET), BODY)


def test_rejects_a_body_changed_by_one_byte() -> None:
    changed = BODY.replace(b"e1", b"e2")
    assert len(changed) == len(BODY)
    with pytest.raises(Forbidden, match="signature is invalid"):
        verifier().verify(signed(), changed)


def test_rejects_a_timestamp_not_covered_by_the_signature() -> None:
    headers = signed() | {"webhook-timestamp": str(NOW + 1)}
    with pytest.raises(Forbidden, match="signature is invalid"):
        verifier().verify(headers, BODY)


@pytest.mark.parametrize(
    ("offset", "match"), [(-360, "too old"), (360, "in the future")], ids=["old", "future"]
)
def test_rejects_a_timestamp_six_minutes_off(offset: int, match: str) -> None:
    with pytest.raises(Forbidden, match=match):
        verifier().verify(signed(at=NOW + offset), BODY)


@pytest.mark.parametrize("offset", [-299, 299])
def test_accepts_a_timestamp_within_the_tolerance(offset: int) -> None:
    assert verifier().verify(signed(at=NOW + offset), BODY) == "msg_1"


@pytest.mark.parametrize("stamp", ["1714564800.5", "-1", "soon", "\N{FULLWIDTH DIGIT ONE}" * 10])
def test_rejects_a_timestamp_that_is_not_an_integer(stamp: str) -> None:
    with pytest.raises(Forbidden, match="not an integer"):
        verifier().verify(signed() | {"webhook-timestamp": stamp}, BODY)


def test_rejects_a_replayed_id() -> None:
    check = verifier()
    check.verify(signed(), BODY)
    with pytest.raises(Forbidden, match="replay"):
        check.verify(signed(), BODY)
    # A fresh signature and timestamp do not make the same id new again.
    with pytest.raises(Forbidden, match="replay"):
        check.verify(signed(at=NOW + 10), BODY)


def test_a_rejected_delivery_does_not_use_up_its_id() -> None:
    check = verifier()
    with pytest.raises(Forbidden):
        check.verify(signed(secret=OTHER_SECRET), BODY)
    assert check.verify(signed(), BODY) == "msg_1"


def test_ids_are_forgotten_after_the_tolerance_window() -> None:
    clock = Clock()
    check = verifier(clock)
    check.verify(signed(), BODY)
    clock.now += 301
    with pytest.raises(Forbidden, match="too old"):
        check.verify(signed(), BODY)  # the replay itself is stale now
    assert check.verify(signed(at=clock.now), BODY) == "msg_1"
    assert len(check._seen) == 1


def test_remembered_ids_are_bounded() -> None:
    check = verifier(remember=2)
    for msg_id in ("a", "b", "c"):
        check.verify(signed(msg_id), BODY)
    assert list(check._seen) == ["b", "c"]
    assert check.verify(signed("a"), BODY) == "a"  # dropped as the oldest


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_unauthenticated(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(Unauthenticated, match=missing):
        verifier().verify(headers, BODY)
    with pytest.raises(Unauthenticated, match=missing):
        verifier().verify(headers | {missing: " "}, BODY)


def test_one_matching_signature_of_several_is_enough() -> None:
    good = signed()["webhook-signature"]
    wrong = signed(secret=OTHER_SECRET)["webhook-signature"]
    headers = signed() | {"webhook-signature": f"{wrong} v1,not-base64! v2,{good[3:]} {good}"}
    assert verifier().verify(headers, BODY) == "msg_1"


def test_a_signature_of_another_version_does_not_count() -> None:
    good = signed()["webhook-signature"]
    headers = signed() | {"webhook-signature": "v1a," + good.partition(",")[2]}
    with pytest.raises(Forbidden, match="signature is invalid"):
        verifier().verify(headers, BODY)


def test_messages_name_neither_secret_nor_signature() -> None:
    headers = signed(secret=OTHER_SECRET)
    with pytest.raises(Forbidden) as caught:
        verifier().verify(headers, BODY)
    text = f"{caught.value} {caught.value.to_body()}"
    signature = headers["webhook-signature"].partition(",")[2]
    for secret in (SECRET.removeprefix("whsec_"), OTHER_SECRET.removeprefix("whsec_"), signature):
        assert secret not in text


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!"])
def test_an_unusable_secret_is_a_config_error(secret: str) -> None:
    with pytest.raises(ConfigError):
        verifier(secret=secret)


@given(msg_id=st.text(min_size=1).map(str.strip).filter(bool), text=st.text())
def test_any_reference_signed_delivery_verifies(msg_id: str, text: str) -> None:
    body = text.encode()
    assert verifier().verify(signed(msg_id, body), body) == msg_id

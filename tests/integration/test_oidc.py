"""OIDC bearer tokens against a tiny issuer (discovery + JWKS) on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.testclient import TestClient
from tests.issuer import LocalIssuer

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.errors import ConfigError, Forbidden, Unauthenticated, Unavailable
from auditlake.source_settings import OidcAuth
from auditlake.web import oidc
from auditlake.web.app import create_app
from auditlake.web.oidc import OidcVerifier

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
AUDIENCE = "auditlake"


def public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        # No "alg": the verifier must fall back to the key type's default (RS256).
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "ES256"}
    return jwk | {"kid": kid, "use": "sig"}


class Issuer:
    """The issuer's state: what it serves and how often it was asked."""

    def __init__(self) -> None:
        self.url = ""
        self.jwks: list[dict[str, Any]] = [public_jwk(RSA_KEY, "rsa1"), public_jwk(EC_KEY, "ec1")]
        self.jwks_status = 200
        self.discovery_status = 200
        self.jwks_body: bytes | None = None  # served as is instead of the key set
        self.delay = 0.0  # seconds before answering anything
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    def token(
        self,
        key: Any = RSA_KEY,
        kid: str = "rsa1",
        alg: str = "RS256",
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        """A token signed by `key`; claims default to valid ones for this issuer."""
        now = int(time.time())
        base = {"iss": self.url, "aud": AUDIENCE, "sub": "webhook:grp", "iat": now}
        payload = {k: v for k, v in (base | {"exp": now + 300} | claims).items() if k not in drop}
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built without PyJWT: HMAC-SHA256 with `key`, or no signature."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def handler_for(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with issuer.lock:
                issuer.hits[self.path] += 1
            time.sleep(issuer.delay)
            if self.path == "/.well-known/openid-configuration":
                document = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                self.send_json(issuer.discovery_status, document)
            elif self.path == "/jwks" and issuer.jwks_body is not None:
                self.send_bytes(issuer.jwks_status, issuer.jwks_body)
            elif self.path == "/jwks":
                self.send_json(issuer.jwks_status, {"keys": issuer.jwks})
            else:
                self.send_json(404, {})

        def send_json(self, status: int, body: Any) -> None:
            self.send_bytes(status, json.dumps(body).encode())

        def send_bytes(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def verifier(issuer: Issuer, **fields: Any) -> OidcVerifier:
    return OidcVerifier(OidcAuth(issuer=issuer.url, audience=AUDIENCE, **fields), fetch_timeout=2)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_accepts_a_valid_rs256_token_and_returns_its_claims(issuer: Issuer) -> None:
    claims = verifier(issuer).verify(bearer(issuer.token(event="pull")))
    assert claims["sub"] == "webhook:grp"
    assert claims["event"] == "pull"
    assert claims["iss"] == issuer.url


def test_accepts_a_valid_es256_token(issuer: Issuer) -> None:
    token = issuer.token(EC_KEY, "ec1", "ES256")
    assert verifier(issuer).verify(f"bearer  {token} ")["aud"] == AUDIENCE


def test_discovers_the_keys_from_the_issuer(issuer: Issuer) -> None:
    check = verifier(issuer)
    assert issuer.hits == {}  # lazy: nothing fetched before the first token
    for _ in range(3):
        check.verify(bearer(issuer.token()))
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_uses_an_explicit_jwks_url(issuer: Issuer) -> None:
    check = verifier(issuer, jwks_url=f"{issuer.url}/jwks")
    check.verify(bearer(issuer.token()))
    assert issuer.hits == {"/jwks": 1}


def test_an_issuer_with_a_trailing_slash_discovers_the_same_document(issuer: Issuer) -> None:
    check = OidcVerifier(OidcAuth(issuer=f"{issuer.url}/", audience=AUDIENCE))
    check.verify(bearer(issuer.token(iss=f"{issuer.url}/")))
    assert issuer.hits["/.well-known/openid-configuration"] == 1


@pytest.mark.parametrize("header", [None, "", "Basic xxx", "Bearer", "Bearer   ", "Token abc"])
def test_without_a_bearer_token_it_is_unauthenticated(issuer: Issuer, header: str | None) -> None:
    with pytest.raises(Unauthenticated, match="a bearer token is required"):
        verifier(issuer).verify(header)
    assert issuer.hits == {}


def _tampered(issuer: Issuer) -> str:
    header, payload, signature = issuer.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "webhook:admin"
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _claims(issuer: Issuer) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer.url, "aud": AUDIENCE, "sub": "webhook:grp", "exp": now + 300}


def _public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


BAD_TOKENS: dict[str, tuple[Callable[[Issuer], str], str]] = {
    "wrong issuer": (lambda i: i.token(iss="https://evil.example"), "issuer is not accepted"),
    "wrong audience": (lambda i: i.token(aud="someone-else"), "audience is not accepted"),
    "expired": (lambda i: i.token(exp=int(time.time()) - 120), "has expired"),
    "nbf in the future": (lambda i: i.token(nbf=int(time.time()) + 600), "not yet valid"),
    "iat in the future": (lambda i: i.token(iat=int(time.time()) + 600), "not yet valid"),
    "missing exp": (lambda i: i.token(drop=("exp",)), "lacks the 'exp' claim"),
    "alg none": (
        lambda i: hand_made({"alg": "none", "typ": "JWT", "kid": "rsa1"}, _claims(i), None),
        "algorithm not allowed",
    ),
    "hs256 with the public key": (
        lambda i: hand_made({"alg": "HS256", "kid": "rsa1"}, _claims(i), _public_pem()),
        "algorithm not allowed",
    ),
    "alg not matching the key": (
        lambda i: i.token(EC_KEY, "rsa1", "ES256"),
        "algorithm not allowed",
    ),
    "unknown kid": (lambda i: i.token(kid="nobody"), "unknown signing key"),
    "no kid": (
        lambda i: jwt.encode(_claims(i), RSA_KEY, algorithm="RS256"),
        "names no signing key",
    ),
    "signed by another key": (
        lambda i: i.token(OTHER_EC_KEY, "ec1", "ES256"),
        "signature is invalid",
    ),
    "tampered payload": (_tampered, "signature is invalid"),
    "malformed": (lambda i: "not-a.jwt", "malformed"),
    "garbage": (lambda i: "%%%", "malformed"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_rejects_a_bad_token(issuer: Issuer, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    token = make(issuer)
    with pytest.raises(Forbidden, match=reason) as caught:
        verifier(issuer).verify(bearer(token))
    assert caught.value.status == 403
    assert token not in str(caught.value.to_body())


def test_leeway_covers_small_clock_differences(issuer: Issuer) -> None:
    now = int(time.time())
    check = verifier(issuer, leeway_seconds=60)
    check.verify(bearer(issuer.token(exp=now - 30, nbf=now + 30, iat=now + 30)))
    with pytest.raises(Forbidden, match="has expired"):
        verifier(issuer, leeway_seconds=0).verify(bearer(issuer.token(exp=now - 30)))


def test_only_the_configured_algorithms_are_accepted(issuer: Issuer) -> None:
    check = verifier(issuer, algorithms=("ES256",))
    check.verify(bearer(issuer.token(EC_KEY, "ec1", "ES256")))
    with pytest.raises(Forbidden, match="algorithm not allowed"):
        check.verify(bearer(issuer.token()))


@pytest.mark.parametrize("algorithms", [("RS256", "HS256"), ("none",), ()])
def test_symmetric_or_no_algorithms_are_a_config_error(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        OidcVerifier(OidcAuth(issuer="https://issuer", audience=AUDIENCE, algorithms=algorithms))


@pytest.mark.parametrize(
    ("subject", "accepted"),
    [
        ("webhook:grp", True),
        ("webhook:grp/child", True),
        ("webhook:grpx", False),
        ("webhook:other", False),
        (None, False),
    ],
)
def test_subject_rules(issuer: Issuer, subject: str | None, accepted: bool) -> None:
    check = verifier(issuer, subjects=("webhook:grp", "webhook:grp/*"))
    token = issuer.token(sub=subject) if subject else issuer.token(drop=("sub",))
    if accepted:
        assert check.verify(bearer(token))["sub"] == subject
    else:
        with pytest.raises(Forbidden, match=r"subject .* is not accepted"):
            check.verify(bearer(token))


def test_a_rotated_key_is_fetched_once(issuer: Issuer) -> None:
    check = verifier(issuer)
    check.verify(bearer(issuer.token()))
    rotated = ec.generate_private_key(ec.SECP256R1())
    issuer.jwks = [public_jwk(rotated, "ec2")]
    claims = check.verify(bearer(issuer.token(rotated, "ec2", "ES256")))
    assert claims["sub"] == "webhook:grp"
    assert issuer.hits["/jwks"] == 2
    check.verify(bearer(issuer.token(rotated, "ec2", "ES256")))
    assert issuer.hits["/jwks"] == 2


def test_a_burst_of_unknown_kids_fetches_the_keys_at_most_twice(issuer: Issuer) -> None:
    check = verifier(issuer)
    tokens = [bearer(issuer.token(kid=f"made-up-{n}")) for n in range(20)]

    def attempt(header: str) -> str:
        try:
            check.verify(header)
        except Forbidden as exc:
            return exc.message
        return "accepted"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, tokens))
    assert outcomes == ["unknown signing key"] * 20
    assert issuer.hits["/jwks"] <= 2
    check.verify(bearer(issuer.token()))  # known keys still work from the cache
    assert issuer.hits["/jwks"] <= 2


def test_concurrent_verifications_share_one_fetch(issuer: Issuer) -> None:
    check = verifier(issuer)
    tokens = [bearer(issuer.token(sub=f"webhook:grp/{n}")) for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        subjects = [claims["sub"] for claims in pool.map(check.verify, tokens)]
    assert subjects == [f"webhook:grp/{n}" for n in range(40)]
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_a_withdrawn_key_stops_working_once_the_cache_is_stale(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = verifier(issuer)
    check.verify(bearer(issuer.token()))
    issuer.jwks = [public_jwk(EC_KEY, "ec1")]
    check.verify(bearer(issuer.token()))  # still cached
    monkeypatch.setattr(oidc, "KEYS_MAX_AGE", 0.0)
    with pytest.raises(Forbidden, match="unknown signing key"):
        check.verify(bearer(issuer.token()))


@pytest.mark.parametrize("where", ["jwks_url", "discovery"])
def test_an_unreachable_issuer_is_unavailable(issuer: Issuer, where: str) -> None:
    dead = dead_url()
    config = (
        OidcAuth(issuer=issuer.url, audience=AUDIENCE, jwks_url=f"{dead}/jwks")
        if where == "jwks_url"
        else OidcAuth(issuer=dead, audience=AUDIENCE)
    )
    token = issuer.token(iss=config.issuer)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        OidcVerifier(config, fetch_timeout=2).verify(bearer(token))
    assert caught.value.status == 503
    assert caught.value.transient
    assert token not in str(caught.value.to_body())
    assert time.monotonic() - started < 2


def test_a_failing_jwks_fails_fast_then_recovers(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = verifier(issuer)
    issuer.jwks_status = 500
    for _ in range(3):
        with pytest.raises(Unavailable):
            check.verify(bearer(issuer.token()))
    assert issuer.hits["/jwks"] == 1  # the backoff kept the others from asking
    issuer.jwks_status = 200
    monkeypatch.setattr(oidc, "FAILURE_BACKOFF", 0.0)
    assert check.verify(bearer(issuer.token()))["sub"] == "webhook:grp"


def test_a_jwks_without_usable_keys_is_unavailable(issuer: Issuer) -> None:
    issuer.jwks = [{"kty": "nonsense", "kid": "x"}]
    with pytest.raises(Unavailable, match="no usable keys"):
        verifier(issuer).verify(bearer(issuer.token()))


# Failures of the issuer while a key must be fetched: each is a 503 (Unavailable,
# retryable) for as long as it lasts, never a 403, and the first try after the
# issuer is back (and the short backoff has passed) checks the token.
def _discovery_down(issuer: Issuer) -> None:
    issuer.discovery_status = 503


def _jwks_down(issuer: Issuer) -> None:
    issuer.jwks_status = 503


def _jwks_not_json(issuer: Issuer) -> None:
    issuer.jwks_body = b"<html>maintenance</html>"


def _jwks_not_a_key_set(issuer: Issuer) -> None:
    issuer.jwks_body = b'{"keys": "soon"}'


def _too_slow(issuer: Issuer) -> None:
    issuer.delay = 1.0  # the verifier below waits 0.3 s


def _recover(issuer: Issuer) -> None:
    issuer.discovery_status = issuer.jwks_status = 200
    issuer.jwks_body = None
    issuer.delay = 0.0


OUTAGES: dict[str, Callable[[Issuer], None]] = {
    "discovery down": _discovery_down,
    "JWKS down": _jwks_down,
    "JWKS not JSON": _jwks_not_json,
    "JWKS not a key set": _jwks_not_a_key_set,
    "timeout": _too_slow,
}
BACKOFF = 0.2


def _outcome(check: OidcVerifier, token: str) -> str:
    try:
        check.verify(bearer(token))
    except (Unavailable, Forbidden) as exc:
        return f"{exc.status}"
    return "ok"


def _quick(issuer: Issuer) -> OidcVerifier:
    return OidcVerifier(OidcAuth(issuer=issuer.url, audience=AUDIENCE), fetch_timeout=0.3)


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_a_first_fetch_during_an_outage_is_503_until_the_issuer_is_back(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch, outage: str
) -> None:
    monkeypatch.setattr(oidc, "FAILURE_BACKOFF", BACKOFF)
    check = _quick(issuer)
    OUTAGES[outage](issuer)
    token = issuer.token()
    assert [_outcome(check, token) for _ in range(3)] == ["503"] * 3  # fast: in the backoff
    time.sleep(BACKOFF + 0.05)
    assert _outcome(check, token) == "503"  # tried again, still down
    _recover(issuer)
    assert _outcome(check, token) in ("503", "ok")  # maybe still in that try's backoff
    time.sleep(BACKOFF + 0.05)
    assert _outcome(check, token) == "ok"


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_a_key_rotated_during_an_outage_is_503_never_403_then_accepted(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch, outage: str
) -> None:
    """The field report: the issuer rotates its key while its key endpoint
    fails; a push signed with the new key got 503 once, then 403 for 10 s."""
    monkeypatch.setattr(oidc, "FAILURE_BACKOFF", BACKOFF)
    check = _quick(issuer)
    assert _outcome(check, issuer.token()) == "ok"  # the old key is cached
    rotated = ec.generate_private_key(ec.SECP256R1())
    issuer.jwks = [public_jwk(rotated, "ec2")]
    issuer.jwks_status = 503 if outage == "discovery down" else issuer.jwks_status
    OUTAGES[outage](issuer)
    new_token = issuer.token(rotated, "ec2", "ES256")
    outcomes = []
    for _ in range(4):  # across several backoffs, the issuer still down
        outcomes.append(_outcome(check, new_token))
        time.sleep(BACKOFF / 2)
    assert outcomes == ["503"] * 4
    assert _outcome(check, issuer.token()) == "ok"  # the cached key still checks
    _recover(issuer)
    time.sleep(BACKOFF + 0.05)
    assert _outcome(check, new_token) == "ok"
    # Keys fetched just now lack this kid: that is a 403, without asking again.
    fetched = issuer.hits["/jwks"]
    assert _outcome(check, issuer.token(rotated, "made-up", "ES256")) == "403"
    assert issuer.hits["/jwks"] == fetched


def test_failed_fetches_are_spaced_by_the_backoff(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oidc, "FAILURE_BACKOFF", BACKOFF)
    check = _quick(issuer)
    issuer.jwks_status = 503
    token = issuer.token()
    deadline = time.monotonic() + 4 * BACKOFF + 0.1
    calls = 0
    while time.monotonic() < deadline:
        assert _outcome(check, token) == "503"
        calls += 1
        time.sleep(0.01)
    assert calls > 20
    assert 2 <= issuer.hits["/jwks"] <= 6  # about one try per backoff, not one per call


def test_an_outage_reaches_the_sender_as_a_503_with_retry_after(tmp_path: Path) -> None:
    """End to end with the local issuer of tests/issuer.py: the push answers
    503 + Retry-After while the key endpoint fails, 201 once it is back."""
    local = LocalIssuer()
    source = {"name": "vendor", "tenant": "acme", "oidc": {"issuer": local.url,
              "audience": "customer"}}  # fmt: skip
    overrides = {"data_dir": str(tmp_path / "data"), "sources": {"cloudevents": [source]}}
    services = build_services(load_settings(env={}, overrides=overrides))
    event = CloudEvent(attributes={"type": "t.x", "source": "/v", "id": "o-1"}, data={"a": 1})
    message = to_binary(event, JSONFormat())
    try:
        with TestClient(create_app(services)) as client:
            local.jwks_status = 503
            response = client.post(
                "/v1/cloudevents",
                content=message.body,
                headers={**message.headers, "authorization": f"Bearer {local.token('s')}"},
            )
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == str(math.ceil(oidc.FAILURE_BACKOFF))
            assert response.json()["error"]["code"] == "unavailable"
            assert local.url.removeprefix("http://") not in response.text  # logged, not sent
            local.jwks_status = 200
            time.sleep(oidc.FAILURE_BACKOFF + 0.1)
            response = client.post(
                "/v1/cloudevents",
                content=message.body,
                headers={**message.headers, "authorization": f"Bearer {local.token('s')}"},
            )
            assert response.status_code == 201, response.text
    finally:
        local.close()


def test_oidc_checks_run_on_the_key_check_threads(
    tmp_path: Path, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An issuer that answers slowly holds at most `key_check_threads`
    threads, never Starlette's shared pool (which had 40)."""
    running, most = [0], [0]
    lock = threading.Lock()
    verify = OidcVerifier.verify

    def counted(self: OidcVerifier, authorization: str | None) -> dict[str, Any]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return verify(self, authorization)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(OidcVerifier, "verify", counted)
    source = {"name": "vendor", "tenant": "acme",
              "oidc": {"issuer": issuer.url, "audience": AUDIENCE}}  # fmt: skip
    overrides = {"data_dir": str(tmp_path / "data"), "key_check_threads": 2,
                 "sources": {"cloudevents": [source]}}  # fmt: skip
    services = build_services(load_settings(env={}, overrides=overrides))
    issuer.delay = 0.3
    event = CloudEvent(attributes={"type": "t.x", "source": "/v", "id": "k-1"}, data={"a": 1})
    message = to_binary(event, JSONFormat())
    headers = {**message.headers, "authorization": bearer(issuer.token())}
    with TestClient(create_app(services)) as client, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: client.post("/v1/cloudevents", content=message.body,
                                           headers=headers).status_code, range(8))
        )  # fmt: skip
    assert set(answers) <= {200, 201}, answers
    assert 1 <= most[0] <= 2, most


def test_a_503_retry_after_is_the_backoff_left(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Retry-After is the whole seconds of backoff left (at least 1), so a
    sender that obeys it is not refused again; the body names no URL."""
    monkeypatch.setattr(oidc, "FAILURE_BACKOFF", 3.0)
    check = _quick(issuer)
    issuer.jwks_status = 503
    token = issuer.token()
    left: list[int] = []
    for pause in (0.0, 0.0, 1.2, 1.0):
        time.sleep(pause)
        with pytest.raises(Unavailable) as caught:
            check.verify(bearer(token))
        assert issuer.url.removeprefix("http://") not in str(caught.value.to_body())
        left.append(caught.value.details["retry_after"])
    assert left[0] == 3  # the failed fetch: the whole backoff
    assert left[1] == 3  # at once after it: still about 3 s, rounded up
    assert left[2] == 2 and left[3] == 1  # counting down, never 0
    assert issuer.hits["/jwks"] == 1
    assert f"{issuer.url}/jwks" in caplog.text  # the operator sees where

"""Verifying OIDC bearer tokens (JWTs) against the issuer's published keys."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import httpx
import jwt

from auditlake.core.patterns import matches_any
from auditlake.errors import ConfigError, Forbidden, Unauthenticated, Unavailable
from auditlake.source_settings import OidcAuth

log = logging.getLogger(__name__)

# Only public-key algorithms: with HS* anyone holding the published key could
# sign (key confusion), and "none" is no signature at all.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    | {"ES256", "ES384", "ES512", "ES256K", "EdDSA"}
)
# Keys are trusted this long, so a key the issuer withdraws stops working.
KEYS_MAX_AGE = 300.0
# An unknown `kid` refetches the keys (rotation) at most this often, so tokens
# with made-up kids cannot make us hammer the issuer. Only a refetch that
# succeeded counts: a kid is "unknown" (403) only once fetched keys lack it.
REFETCH_INTERVAL = 10.0
# After a failed fetch, callers fail fast this long (503, retryable) instead
# of queueing behind one timeout after another; then the next call tries again.
FAILURE_BACKOFF = 2.0

# Most specific first: InvalidSignatureError is a DecodeError.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not yet valid"),
    (jwt.InvalidIssuerError, "the token's issuer is not accepted"),
    (jwt.InvalidAudienceError, "the token's audience is not accepted"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidSignatureError, "the token's signature is invalid"),
    (jwt.InvalidIssuedAtError, "the token's issue time is invalid"),
    (jwt.DecodeError, "the token is malformed"),
)


class OidcVerifier:
    """Checks `Authorization: Bearer <JWT>` for one issuer, audience and subject rule.

    The signing keys are fetched on first use and cached. Blocking, thread-safe.
    """

    def __init__(self, config: OidcAuth, *, fetch_timeout: float = 5.0) -> None:
        unsafe = sorted(set(config.algorithms) - ASYMMETRIC)
        if unsafe or not config.algorithms:
            raise ConfigError(f"OIDC needs public-key algorithms; not allowed: {unsafe}")
        self._config = config
        self._timeout = fetch_timeout
        self._lock = threading.Lock()
        self._jwks_url = config.jwks_url
        # Issuers are URLs: with or without a trailing slash they are the same.
        bare = config.issuer.rstrip("/")
        self._issuers = (bare, bare + "/")
        # (monotonic fetch time, keys by kid), replaced as a whole.
        self._cache: tuple[float, dict[str, jwt.PyJWK]] | None = None
        self._refetched_at = -math.inf
        self._failed_at = -math.inf

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; 401 without a bearer token, 403 for a bad token,
        503 (`Unavailable`, retryable) when the issuer's keys cannot be fetched
        to check it: a token that could not be checked is never refused."""
        kind, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise Unauthenticated("a bearer token is required")
        key = self._key_for(self._kid(token))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self._config.algorithms),
                audience=self._config.audience,
                issuer=self._issuers,
                leeway=self._config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Forbidden(f"the token lacks the '{exc.claim}' claim") from None
        except jwt.PyJWTError as exc:
            raise Forbidden(_reason(exc)) from None
        self._check_subject(claims.get("sub"))
        return claims

    def _kid(self, token: str) -> str:
        # Checked before any key is fetched: a forged header costs us nothing.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Forbidden("the token is malformed") from None
        if header.get("alg") not in self._config.algorithms:
            raise Forbidden("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Forbidden("the token names no signing key (kid)")
        return kid

    def _check_subject(self, subject: object) -> None:
        rules = self._config.subjects
        if not rules or (isinstance(subject, str) and matches_any(rules, subject)):
            return
        raise Forbidden(f"the token's subject {subject!r} is not accepted")

    def _key_for(self, kid: str) -> jwt.PyJWK:
        cache = self._cache
        if cache is not None and kid in cache[1] and time.monotonic() - cache[0] < KEYS_MAX_AGE:
            return cache[1][kid]
        with self._lock:
            key = self._current_keys(kid).get(kid)
        if key is None:
            raise Forbidden("unknown signing key")
        return key

    def _current_keys(self, kid: str) -> dict[str, jwt.PyJWK]:
        """Under the lock: keys to look `kid` up in. The cached ones while
        fresh, if they hold `kid` or were refetched for an unknown kid less
        than REFETCH_INTERVAL ago; else fetched now (Unavailable if that fails,
        so the caller answers 503, not 403)."""
        now = time.monotonic()
        cache = self._cache
        if cache is None or now - cache[0] >= KEYS_MAX_AGE:
            return self._fetch_keys()
        if kid in cache[1] or now - self._refetched_at < REFETCH_INTERVAL:
            return cache[1]
        keys = self._fetch_keys()
        self._refetched_at = time.monotonic()  # set only once a refetch succeeded
        return keys

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        """The issuer's keys, fetched now. Unavailable (503) if that fails or
        a fetch failed less than FAILURE_BACKOFF ago; its `retry_after` is
        the backoff left, in whole seconds (at least 1)."""
        left = self._failed_at + FAILURE_BACKOFF - time.monotonic()
        if left > 0:
            raise Unavailable(
                "the issuer's signing keys cannot be fetched; retry later",
                {"retry_after": _whole_seconds(left)},
            )
        try:
            keys = _parse_jwks(self._get_json(self._keys_url()))
        except Unavailable as exc:
            self._failed_at = time.monotonic()
            # The URLs are the operator's business: logged, never sent back.
            where = self._jwks_url or self._discovery_url()
            log.warning("OIDC keys of %s from %s: %s", self._config.issuer, where, exc.message)
            raise Unavailable(
                exc.message, {"retry_after": _whole_seconds(FAILURE_BACKOFF)}
            ) from None
        self._cache = (time.monotonic(), keys)
        return keys

    def _discovery_url(self) -> str:
        return f"{self._config.issuer.rstrip('/')}/.well-known/openid-configuration"

    def _keys_url(self) -> str:
        if self._jwks_url is None:
            document = self._get_json(self._discovery_url(), "discovery document")
            url = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(url, str):
                raise Unavailable("the issuer's discovery document has no jwks_uri")
            self._jwks_url = url
        return self._jwks_url

    def _get_json(self, url: str, what: str = "signing keys (JWKS)") -> Any:
        """The JSON at `url`; Unavailable naming `what` (not the URL) if not."""
        try:
            response = httpx.get(url, timeout=self._timeout, follow_redirects=True)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"cannot fetch the issuer's {what} ({type(exc).__name__})") from None


def _whole_seconds(seconds: float) -> int:
    """`seconds` rounded up, at least 1: a Retry-After that never comes early."""
    return max(1, math.ceil(seconds))


def _parse_jwks(data: Any) -> dict[str, jwt.PyJWK]:
    if not isinstance(data, dict):
        raise Unavailable("the issuer's JWKS is not a JSON object")
    try:
        found = jwt.PyJWKSet.from_dict(data).keys
    except (jwt.PyJWTError, AttributeError, KeyError, TypeError, ValueError):
        raise Unavailable("the issuer's JWKS has no usable keys") from None
    return {k.key_id: k for k in found if k.key_id and k.public_key_use in (None, "sig")}


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "the token is invalid"

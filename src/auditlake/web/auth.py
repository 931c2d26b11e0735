"""Authenticating requests by API key, with a short cache of verified keys."""

from __future__ import annotations

import hashlib
import time

from starlette.requests import Request

from auditlake.errors import Forbidden, Unauthenticated
from auditlake.keys.base import ApiKey, KeyStore, Scope, check_tenant, verify
from auditlake.web.limits import WorkPools


class Authenticator:
    """Turns an `Authorization: Bearer` header into an `ApiKey` with a scope check.

    A verified key is trusted for `cache_seconds`, so a revocation through the
    CLI takes effect within that time without a database read per request.
    Lookups run on `pools`' key-check threads, never behind searches.
    """

    def __init__(self, keys: KeyStore, cache_seconds: float, pools: WorkPools) -> None:
        self._keys = keys
        self._pools = pools
        self._ttl = cache_seconds
        self._cache: dict[bytes, tuple[ApiKey, float]] = {}

    async def require(self, request: Request, scope: Scope) -> ApiKey:
        """The request's key if it has `scope`; 401 or 403 otherwise."""
        header = request.headers.get("authorization", "")
        kind, _, presented = header.partition(" ")
        if kind.lower() != "bearer" or not presented.strip():
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        key = await self._verified(presented.strip())
        if not key.allows(scope):
            raise Forbidden(f"this key lacks the '{scope}' scope", {"scopes": list(key.scopes)})
        return key

    async def _verified(self, presented: str) -> ApiKey:
        # Cache by digest so the secret itself is never a dictionary key.
        digest = hashlib.sha256(presented.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = await self._pools.check_key(verify, presented, self._keys)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (key, now + self._ttl)
        return key


def read_tenant(request: Request, key: ApiKey) -> str:
    """The tenant a read addresses: the key's own, or any for an admin key."""
    asked = request.query_params.get("tenant")
    if asked is None or asked == key.tenant:
        return key.tenant
    check_tenant(asked)  # a name no tenant can have is a 422 for every key
    if not key.allows("admin"):
        raise Forbidden("this key may only read its own tenant", {"tenant": asked})
    return asked

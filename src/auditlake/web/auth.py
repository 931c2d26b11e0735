"""Authenticating requests by API key, with a short cache of verified keys."""

from __future__ import annotations

import hashlib
import time

from starlette.requests import Request

from auditlake.core.event import check_tenant
from auditlake.core.query import single_values
from auditlake.errors import Forbidden, MalformedInput, Unauthenticated
from auditlake.keys.base import ApiKey, KeyStore, Scope, verify
from auditlake.work_limits import WorkPools


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
            detail = {"message": f"needs the '{scope}' scope", "scopes": list(key.scopes)}
            raise Forbidden(f"this key lacks the '{scope}' scope", [detail])
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


def query_values(request: Request) -> dict[str, str]:
    """The request's query parameters, one value each; a parameter given
    twice, or empty, is a 400 naming it (`core.query.single_values`)."""
    return single_values(request.query_params.multi_items())


def read_tenant(request: Request, key: ApiKey) -> str:
    """The tenant a read addresses: the key's own, or any for an admin key.

    Every read calls this first, so it also refuses an ambiguous query string
    (`query_values`). A `tenant` no tenant can have is a 400 for every key,
    like any other query parameter out of its form."""
    asked = query_values(request).get("tenant")
    if asked is None or asked == key.tenant:
        return key.tenant
    check_tenant(asked, MalformedInput)
    if not key.allows("admin"):
        detail = {"field": "tenant", "message": "not this key's tenant"}
        raise Forbidden("this key may only read its own tenant", [detail])
    return asked

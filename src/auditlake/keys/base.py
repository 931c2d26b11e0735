"""API keys: random secrets, shown once, kept only as a hash.

A key reads `al_<key_id>_<secret>`. The key id is public (it names the key in
`keys list` and in the `caller` of events); the secret is 32 random bytes and
is stored as its SHA-256, which suffices for high-entropy secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Literal, Protocol

import msgspec

from auditlake.errors import Unauthenticated

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
_KEY = re.compile(r"al_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})", re.ASCII)


class ApiKey(msgspec.Struct, frozen=True):
    """A stored key, without its secret."""

    key_id: str
    tenant: str
    scopes: tuple[Scope, ...]
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """Admin keys may do everything their tenant's keys may."""
        return scope in self.scopes or "admin" in self.scopes


class KeyStore(Protocol):
    """Where keys live."""

    def create(self, tenant: str, scopes: list[Scope], name: str) -> tuple[ApiKey, str]:
        """Store a new key; return it with the full secret key (shown once)."""

    def find(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        """The key and its secret hash, or None."""

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included."""

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False if it did not exist or was already revoked."""

    def close(self) -> None:
        """Release the store (an embedded one writes everything into its file)."""


def new_secret() -> tuple[str, str, bytes]:
    """A fresh (key_id, full key, secret hash)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"al_{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).digest()


def split_key(presented: str) -> tuple[str, str]:
    """(key_id, secret) of a presented key, or a 401 that does not echo it."""
    match = _KEY.fullmatch(presented)
    if match is None:
        raise Unauthenticated("the API key is not valid")
    return match["key_id"], match["secret"]


def verify(presented: str, keys: KeyStore) -> ApiKey:
    """The active key matching `presented`, compared in constant time, or a 401."""
    key_id, secret = split_key(presented)
    found = keys.find(key_id)
    if found is None:
        raise Unauthenticated("the API key is not valid")
    key, stored_hash = found
    if not hmac.compare_digest(stored_hash, hash_secret(secret)) or key.revoked_at is not None:
        raise Unauthenticated("the API key is not valid")
    return key

"""API keys in their own embedded database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from auditlake.core.event import check_tenant
from auditlake.keys.base import SCOPES, ApiKey, Scope, new_secret
from auditlake.sqlite_db import open_database, query


class SqliteKeyStore:
    """`KeyStore` on the `api_keys` table."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path, "keys")
        self._lock = threading.Lock()

    def create(self, tenant: str, scopes: list[Scope], name: str = "") -> tuple[ApiKey, str]:
        """Store a new key and return it with the full secret key."""
        check_tenant(tenant)
        ordered = tuple(s for s in SCOPES if s in scopes)
        key_id, full_key, secret_hash = new_secret()
        key = ApiKey(key_id, tenant, ordered, name, datetime.now(UTC))
        with self._lock:
            self._conn.execute(
                query("keys", "insert_key"),
                (key_id, tenant, ",".join(ordered), secret_hash, name, key.created_at.isoformat()),
            )
        return key, full_key

    def find(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        """The key and its secret hash, or None."""
        with self._lock:
            row = self._conn.execute(query("keys", "get_key"), (key_id,)).fetchone()
        return None if row is None else (_key(row), bytes(row[3]))

    def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        with self._lock:
            rows = self._conn.execute(query("keys", "list_keys")).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False if unknown or already revoked."""
        with self._lock:
            self._conn.execute(query("keys", "revoke_key"), (datetime.now(UTC).isoformat(), key_id))
            return self._conn.changes() == 1

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, tenant, scopes, _hash, name, created, revoked = row
    return ApiKey(
        key_id=str(key_id),
        tenant=str(tenant),
        scopes=tuple(cast(Scope, s) for s in str(scopes).split(",") if s),
        name=str(name),
        created_at=datetime.fromisoformat(str(created)),
        revoked_at=datetime.fromisoformat(str(revoked)) if revoked else None,
    )

"""`DeadLetters` in a table of an embedded database (the `consumers` and the
`pollers` databases each hold one, of the same shape; its statements are in
`sql/sqlite/dead_letters/queries.sql`)."""

from __future__ import annotations

import threading

import msgspec

from auditlake.dead_letters import DeadLetter, now_text
from auditlake.sqlite_db import DbConnection, fetch_all, query, scalar


class SqliteDeadLetters:
    """`DeadLetters` in the `dead_letters` table of `conn`, whose other users
    share `lock` with it."""

    def __init__(self, conn: DbConnection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def add(self, owner: str, key: str, reason: str, item: bytes, position: int | None) -> None:
        """Keep `item` with the reason (replacing the reason of an earlier one)."""
        params = (owner, key, position, reason, item, now_text())
        with self._lock:
            self._conn.execute(query("dead_letters", "insert"), params)

    def letters(self, owner: str) -> list[DeadLetter]:
        """`owner`'s letters by position, then in the order they came."""
        with self._lock:
            rows = fetch_all(self._conn, query("dead_letters", "of_owner"), (owner,))
        return [
            DeadLetter(owner, key, position, reason, recorded, _raw(item))
            for key, position, reason, recorded, item in rows
        ]

    def first_position(self, owner: str) -> int | None:
        """The lowest position among `owner`'s letters."""
        with self._lock:
            first = scalar(self._conn, query("dead_letters", "first_position"), (owner,))
        return None if first is None else int(first)

    def forget(self, owner: str, key: str) -> None:
        """Remove a letter."""
        with self._lock:
            self._conn.execute(query("dead_letters", "delete"), (owner, key))


def _raw(item: bytes | str | None) -> msgspec.Raw | None:
    return None if item is None else msgspec.Raw(item)

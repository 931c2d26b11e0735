"""Searching the PostgreSQL store: the same pages as the SQLite store
(filters, `q`, order, keyset cursors over (occurred_at, seq)), from the
`events` table the recorder's PostgreSQL sink fills.

`q` is PostgreSQL text search without its parser on either side: the
recorder stores each event's folded words (`core.words`) as a tsvector,
and a search asks for every word of `q`, folded the same way, as a prefix
(`'word':*`), which is exactly `core.query.matches`' rule; a GIN index
serves it. (`pg_trgm` would match substrings inside words, which the other
backends do not.) A search runs under `statement_timeout`, the store's
budget, and past it is `core.query.too_costly` (422).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from auditlake.core.query import SEARCH_CPU_SECONDS, Position, Query, too_costly
from auditlake.core.words import search_words
from auditlake.errors import Unavailable
from auditlake.postgres_db import query, redact
from auditlake.store.base import Page

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class PostgresStore:
    """`EventStore` over the PostgreSQL store, through a connection pool."""

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 8,
        budget_seconds: float = SEARCH_CPU_SECONDS,
        wait_seconds: float = 10.0,
    ) -> None:
        """`wait_seconds`: how long a read waits for a connection (all busy,
        or the server unreachable) before it is Unavailable (503)."""
        from psycopg_pool import ConnectionPool

        self._budget = budget_seconds
        self._pool: ConnectionPool[psycopg.Connection[tuple[object, ...]]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=wait_seconds,
            open=False,
        )
        self._pool.open(wait=False)

    def get(self, tenant: str, event_id: str) -> bytes | None:
        """The stored JSON of one event of this tenant, or None."""
        row = self._one(query("store", "get_event"), (tenant, event_id))
        return None if row is None else bytes(cast(bytes, row[0]))

    def search(self, q: Query) -> Page:
        """One page of matching events, ordered by (occurred_at, seq);
        InvalidInput (422, too costly) past the budget."""
        import psycopg

        sql, params = build_search(q)
        try:
            with self._pool.connection() as conn, conn.transaction():
                budget = f"{int(self._budget * 1000)}ms"
                conn.execute(query("store", "set_budget"), (budget,))
                rows = conn.execute(sql, params).fetchall()
        except psycopg.errors.QueryCanceled:
            raise too_costly(self._budget) from None
        except psycopg.OperationalError as exc:
            raise Unavailable(f"the PostgreSQL store cannot answer: {redact(str(exc))}") from None
        events = [bytes(cast(bytes, row[0])) for row in rows[: q.limit]]
        last = rows[q.limit - 1] if len(rows) > q.limit else None
        if last is None:
            return Page(events, None)
        return Page(events, Position(micros(cast(datetime, last[1])), int(cast(int, last[2]))))

    def ping(self) -> None:
        """Raise if the store cannot be read."""
        self._one(query("store", "ping"), ())

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def _one(self, sql: bytes, params: tuple[Any, ...]) -> tuple[object, ...] | None:
        import psycopg

        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchone()
        except psycopg.OperationalError as exc:
            raise Unavailable(f"the PostgreSQL store cannot answer: {redact(str(exc))}") from None


def build_search(q: Query) -> tuple[bytes, list[Any]]:
    """The SELECT of one page (one row more than the limit, to know if more
    exist) and its parameters."""
    f = q.filters
    where: list[str] = ["e.tenant = %s"]
    params: list[Any] = [q.tenant]
    for name, equal in f.equalities():
        where.append(f"e.{name} = %s")
        params.append(equal)
    if (bounds := f.action_range()) is not None:  # in the C collation: the index serves it
        where.append("e.action >= %s AND e.action < %s")
        params += bounds
    if f.since_us is not None:
        where.append("e.occurred_at >= %s")
        params.append(moment(f.since_us))
    if f.until_us is not None:
        where.append("e.occurred_at < %s")
        params.append(moment(f.until_us))
    for column, value in (("target_id", f.target_id), ("target_type", f.target_type)):
        if value is not None:
            where.append(
                f"e.seq IN (SELECT seq FROM event_targets WHERE tenant = %s AND {column} = %s)"
            )
            params += [q.tenant, value]
    if f.q is not None:
        words = search_words(f.q)
        where.append("e.words @@ %s::tsquery" if words else "false")  # no word: nothing
        params += [tsquery(words)] if words else []
    descending = q.order == "desc"
    if q.after is not None:
        where.append(f"(e.occurred_at, e.seq) {'<' if descending else '>'} (%s, %s)")
        params += [moment(q.after.occurred_us), q.after.seq]
    direction = "DESC" if descending else "ASC"
    sql = (
        "SELECT e.body, e.occurred_at, e.seq FROM events AS e WHERE "
        + " AND ".join(where)
        + f" ORDER BY e.occurred_at {direction}, e.seq {direction} LIMIT %s"
    )
    params.append(q.limit + 1)
    return sql.encode(), params


def tsquery(words: list[str]) -> str:
    """A tsquery (in its text form) that wants every one of `words` (folded
    as the store holds them) as a word prefix. A word is letters and digits
    only (`core.words.WORD`): nothing in it needs quoting."""
    return " & ".join(f"'{word}':*" for word in words)


def moment(micros_since_epoch: int) -> datetime:
    """Microseconds since the Unix epoch as an exact UTC datetime."""
    return EPOCH + timedelta(microseconds=micros_since_epoch)


def micros(when: datetime) -> int:
    """An aware datetime as exact microseconds since the Unix epoch."""
    return (when - EPOCH) // MICROSECOND

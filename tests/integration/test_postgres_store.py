"""The PostgreSQL store's own limits: a search past its budget is the same
422 as on SQLite; a store that cannot be reached is Unavailable."""

from __future__ import annotations

import psycopg
import pytest

from auditlake.core.query import parse_query
from auditlake.errors import InvalidInput, Unavailable
from auditlake.postgres_db import connect, migrate
from auditlake.store.postgres import PostgresStore


def test_a_search_past_its_budget_is_too_costly(pg_dsn: str) -> None:
    with connect(pg_dsn) as conn:
        migrate(conn, "store")
    with psycopg.connect(pg_dsn) as conn:  # 200,000 events of one tenant, one word each
        conn.execute(
            "INSERT INTO events (seq, tenant, id, action, occurred_at, received_at, source,"
            " caller, outcome, version, targets, metadata, words, body)"
            " SELECT n, 'acme', 'e' || n, 'x', now() - n * interval '1 second', now(), 'api',"
            " 'key:t', 'success', 1, '[]', '{}', array_to_tsvector(ARRAY['w' || n]), '\\x7b7d'"
            " FROM generate_series(1, 200000) AS n"
        )
    store = PostgresStore(pg_dsn, pool_size=1, budget_seconds=0.001)
    try:
        with pytest.raises(InvalidInput, match="stopped after"):
            store.search(parse_query("acme", {"q": "w", "order": "asc", "limit": "10"}))
        roomy = PostgresStore(pg_dsn, pool_size=1)
        try:
            assert len(roomy.search(parse_query("acme", {"q": "w199999"})).events) == 1
        finally:
            roomy.close()
    finally:
        store.close()


def test_an_unreachable_store_is_unavailable() -> None:
    store = PostgresStore("host=127.0.0.1 port=1 user=postgres dbname=x", wait_seconds=1.0)
    try:
        with pytest.raises(Unavailable):
            store.get("acme", "a")
    finally:
        store.close()

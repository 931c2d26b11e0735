"""A bounded schemathesis run over `/openapi.json` against a real server: the
document and the behaviour agree.

Every operation gets schema-valid and schema-invalid requests (fixed seed, a
bounded number each), sent with a key that has every scope, so the real
handlers run. Each answer must be no 5xx, a documented status with a
documented content type, headers and body schema; valid input must be
accepted and invalid input refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import seed as fixed_seed
from schemathesis.checks import positive_data_acceptance
from tests.conftest import LiveServer

from auditlake.web.openapi import openapi_document

EXAMPLES_PER_OPERATION = 10
# The document of a server with default settings and no CloudEvents source,
# as the live server serves it (checked in the test).
DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.mark.timeout(300)
@schema.parametrize()
@fixed_seed(20261129)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_behaves_as_its_openapi_document_says(case: Any, live_server: LiveServer) -> None:
    key = _checked_key(live_server)
    # A cursor is opaque: only one the server made is valid, and no schema
    # can say which strings those are. Any other must still get a documented 4xx.
    made_up_cursor = bool(case.query and case.query.get("cursor"))
    excluded = [positive_data_acceptance] if made_up_cursor else []
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {key}"},
        excluded_checks=excluded,
    )
    SENT[case.operation.label] = SENT.get(case.operation.label, 0) + 1


_KEYS: dict[str, str] = {}


def _checked_key(server: LiveServer) -> str:
    """A key with every scope, made once per server, once the server is seen
    to serve the document the cases come from."""
    if server.url not in _KEYS:
        assert httpx.get(f"{server.url}/openapi.json").json() == DOCUMENT
        _KEYS[server.url] = server.key("acme", "ingest", "read", "admin")
    return _KEYS[server.url]


SENT: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_requests() -> Iterator[None]:
    yield
    print(f"\nschemathesis requests per operation: {SENT}, total {sum(SENT.values())}")

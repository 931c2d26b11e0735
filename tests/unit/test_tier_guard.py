"""The tier guard: a unit test that tries the network or a database fails,
even when the code under test catches the refusal."""

from __future__ import annotations

import socket

import pytest
from tests.conftest import BlockedIo

from auditlake.errors import AuditlakeError


def careless_probe() -> bool:
    """Product-like code that swallows whatever a connection attempt raises."""
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    except Exception:
        return False
    return True


def test_a_caught_attempt_is_still_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = BlockedIo(monkeypatch)
    assert careless_probe() is False  # the refusal was caught
    assert guard.tried == ["socket.connect"]
    assert guard.verdict() == "a unit test tried socket.connect: mark it integration"
    guard.tried.clear()  # this test tried on purpose


def test_nothing_tried_fails_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = BlockedIo(monkeypatch)
    with pytest.raises(AuditlakeError):
        raise AuditlakeError("no I/O here")
    assert guard.verdict() is None


def test_the_autouse_guard_fails_a_unit_test_whose_code_caught_the_refusal(
    pytester: pytest.Pytester,
) -> None:
    """The repo's own fixture, run on a scratch unit test: the test body
    passes (the refusal was swallowed), its teardown fails it."""
    pytester.makeconftest("from tests.conftest import _block_io_in_unit_tests  # noqa: F401\n")
    pytester.makepyfile(
        test_scratch="""
import socket

def test_swallows() -> None:
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    except Exception:
        pass
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*a unit test tried socket.connect: mark it integration*"])


def test_a_postgres_connection_is_refused_in_a_unit_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq opens its own sockets, which socket.connect never sees."""
    from auditlake.postgres_db import connect

    guard = BlockedIo(monkeypatch)
    with pytest.raises(RuntimeError, match="unit tests may not"):
        connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    assert guard.tried == ["psycopg.connect"]
    guard.tried.clear()  # this test tried on purpose

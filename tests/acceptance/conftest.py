"""Fixtures for the acceptance tests: a server subprocess that is always killed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The server's data folder (created by the first command that needs it)."""
    return tmp_path / "data"


@pytest.fixture
def server(tmp_path: Path, data_dir: Path) -> Iterator[Server]:
    """An `auditlake serve` handle, not started; SIGKILLed at teardown if alive."""
    handle = Server(data_dir, tmp_path / "server.log")
    try:
        yield handle
    finally:
        handle.kill()

"""Everything the server writes in its data folder is private to its user:
files 0600, folders 0700, whatever the umask it was started with."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer

from auditlake.config import LakeSettings, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    lake = LakeSettings(batch_events=1, batch_seconds=0.1)  # archive at once
    return Settings(data_dir=str(tmp_path / "data"), port=0, lake=lake)


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    """The usual umask, which leaves new files readable by everyone."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_data_files_and_folders_are_private(live_server: LiveServer, settings: Settings) -> None:
    headers = {"authorization": f"Bearer {live_server.key('acme')}"}
    events = [
        {"action": "user.signed_in", "actor": {"id": f"u{n}", "type": "user"}} for n in range(5)
    ]
    answer = httpx.post(
        f"{live_server.url}/v1/events/batch", json={"events": events}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    assert httpx.get(f"{live_server.url}/v1/events", headers=headers).status_code == 200
    data = Path(settings.data_dir)
    deadline = time.monotonic() + 30
    while not any(p.suffix == ".parquet" for p in settings.lake_folder.rglob("*")):
        assert time.monotonic() < deadline, "the archiver wrote nothing"
        time.sleep(0.1)
    names = {p.name for p in data.iterdir()}
    expected = {"journal.db", "store.db", "keys.db", "consumers.db", "lake"}
    assert expected <= names, names
    assert any(name.endswith("-wal") for name in names), names  # WAL files too
    public = {
        str(path.relative_to(data)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data, *data.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }
    assert public == {}
    modes = {stat.S_IMODE(p.stat().st_mode) for p in data.rglob("*") if p.is_file()}
    assert modes == {0o600}

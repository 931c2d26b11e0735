"""`[journal]` and `[store]` choose the backends and where their files go; a
clean stop leaves every file whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.sqlite_db import connect


def test_the_sqlite_files_go_where_the_blocks_say(tmp_path: Path) -> None:
    journal, store = tmp_path / "fast" / "journal.db", tmp_path / "big" / "store.db"
    settings = load_settings(
        overrides={
            "data_dir": str(tmp_path / "data"),
            "journal": {"path": str(journal)},
            "store": {"path": str(store)},
            "lake": {"enabled": False},
        }
    )
    services = build_services(settings)
    services.start()
    try:
        origin = Origin("acme", "key:t", "api", datetime.now(UTC))
        events = normalize([EventInput(action="x", id="e1")], origin, Limits())
        [result] = services.journal.submit(events).result(timeout=10)
        assert result.status == "created"
        assert services.recorder is not None
        services.recorder.sync().result(timeout=10)
        assert services.store.get("acme", "e1") is not None
    finally:
        services.close()
    assert journal.exists() and store.exists()
    assert not (tmp_path / "data" / "journal.db").exists()
    assert not (tmp_path / "data" / "store.db").exists()


def test_a_clean_stop_leaves_every_key_in_keys_db_itself(tmp_path: Path) -> None:
    """A backup that copies the data folder's `*.db` files keeps the keys."""
    settings = load_settings(overrides={"data_dir": str(tmp_path), "lake": {"enabled": False}})
    services = build_services(settings)
    services.start()
    try:
        key, _secret = services.keys.create("acme", ["ingest"], "backup")
    finally:
        services.close()
    copy = tmp_path / "copy" / "keys.db"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "keys.db").read_bytes())  # the file alone, no -wal
    conn = connect(copy)
    assert conn.execute("SELECT key_id FROM api_keys").fetchall() == [(key.key_id,)]
    conn.close()

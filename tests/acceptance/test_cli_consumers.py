"""`auditlake consumers` from the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_cli
from .test_cli_errors import assert_one_error_line


@pytest.mark.timeout(60)
def test_dead_letters_and_replay_on_a_fresh_data_folder(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    listed = run_cli("consumers", "dead-letters", "archiver", *data, cwd=tmp_path)
    assert (listed.returncode, listed.stdout) == (0, "")
    replayed = run_cli("consumers", "replay", "archiver", *data, cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "archiver: 0 replayed, 0 still failing"
    assert_one_error_line(run_cli("consumers", "replay", "nope", *data, cwd=tmp_path), "nope")


@pytest.mark.timeout(60)
def test_the_recorders_dead_letters_are_listed_not_replayed(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    listed = run_cli("consumers", "dead-letters", "recorder", *data, cwd=tmp_path)
    assert (listed.returncode, listed.stdout) == (0, ""), listed.stderr
    replayed = run_cli("consumers", "replay", "recorder", *data, cwd=tmp_path)
    assert_one_error_line(replayed, "recorder", "journal order")
    unknown = run_cli("consumers", "dead-letters", "nope", *data, cwd=tmp_path)
    assert_one_error_line(unknown, "nope", "recorder")


@pytest.mark.timeout(60)
def test_with_the_lake_off_the_error_says_why_there_is_no_archiver(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    lake_off = {"AUDITLAKE_LAKE__ENABLED": "false"}
    for command in ("dead-letters", "replay"):
        done = run_cli("consumers", command, "archiver", *data, cwd=tmp_path, env=lake_off)
        assert_one_error_line(done, "archiver", "[lake] enabled = false")

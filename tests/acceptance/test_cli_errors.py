"""Operator mistakes on the real command line: a non-zero exit and one
`error: ...` line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .helpers import free_port, run_cli


def assert_one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], done.stderr
    assert done.stdout == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tenant", ["bad tenant!", "", "-leading-dash", "x" * 129])
def test_keys_create_with_bad_tenant(tmp_path: Path, tenant: str) -> None:
    data_dir = tmp_path / "data"
    done = run_cli("keys", "create", "--tenant", tenant, "--data-dir", str(data_dir), cwd=tmp_path)
    assert_one_error_line(done, "tenant")
    listed = run_cli("keys", "list", "--json", "--data-dir", str(data_dir), cwd=tmp_path)
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")  # no key was created


@pytest.mark.timeout(60)
def test_serve_with_missing_config(tmp_path: Path) -> None:
    port = str(free_port())
    done = run_cli("serve", "--config", "missing.toml", "--port", port, cwd=tmp_path, timeout=30)
    assert_one_error_line(done, "missing.toml")


@pytest.mark.timeout(60)
def test_serve_with_invalid_config(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('queue_capacity = "lots"\n')
    port = str(free_port())
    done = run_cli("serve", "--config", "bad.toml", "--port", port, cwd=tmp_path, timeout=30)
    assert_one_error_line(done, "config")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["query", "--lake"], ["--tenant"]),
        (["query"], ["API key"]),
        (["rehydrate", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
         ["--since"]),
        (["rehydrate", "--since", "yesterday", "--until", "2026-01-01T00:00:00Z"], ["since"]),
    ],
)  # fmt: skip
def test_lake_commands_with_mistakes(tmp_path: Path, args: list[str], words: list[str]) -> None:
    done = run_cli(*args, "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert_one_error_line(done, *words)

"""Operator mistakes on the real command line: a non-zero exit and one
`error: ...` line on stderr, never a traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from .helpers import Server, run_cli


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
    done = run_cli("serve", "--config", "missing.toml", "--port", "0", cwd=tmp_path, timeout=30)
    assert_one_error_line(done, "missing.toml")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], ["port"]),
        (["--port", "-1"], ["port"]),
        (["--host", "192.0.2.1"], ["cannot listen", "192.0.2.1"]),  # not this machine's
        (["--port-file", "no/such/folder/port"], ["port file", "no/such/folder/port"]),
    ],
)
def test_serve_where_it_cannot_listen_or_tell_its_port(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    base = ["serve", "--data-dir", str(tmp_path / "data"), "--port", "0"]
    assert_one_error_line(run_cli(*base, *args, cwd=tmp_path, timeout=30), *words)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("block", "words"),
    [
        ('[journal]\npath = "/proc/nope/journal.db"', ["/proc/nope/journal.db"]),
        ('[store]\npath = "{tmp}/a-file/store.db"', ["cannot open the database", "store.db"]),
        ('[journal]\npath = "{tmp}"', ["cannot open the database"]),
    ],
)
def test_serve_with_a_database_path_it_cannot_use(
    tmp_path: Path, block: str, words: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "c.toml").write_text(block.format(tmp=tmp_path) + "\n")
    done = run_cli("serve", "--config", "c.toml", "--data-dir", str(tmp_path / "data"),
                   "--port", "0", cwd=tmp_path, timeout=30)  # fmt: skip
    assert_one_error_line(done, *words)


@pytest.mark.timeout(60)
def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = run_cli("serve", "--data-dir", str(tmp_path / "data"), "--port", port,
                       cwd=tmp_path, timeout=30)  # fmt: skip
    assert_one_error_line(done, "cannot listen", port)


@pytest.mark.timeout(60)
def test_serve_with_invalid_config(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('queue_capacity = "lots"\n')
    done = run_cli("serve", "--config", "bad.toml", "--port", "0", cwd=tmp_path, timeout=30)
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
        (["rehydrate", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z",
          "--tenant", "bad name"], ["--tenant", "bad name"]),
    ],
)  # fmt: skip
def test_lake_commands_with_mistakes(tmp_path: Path, args: list[str], words: list[str]) -> None:
    done = run_cli(*args, "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert_one_error_line(done, *words)


@pytest.mark.timeout(90)
def test_serve_on_port_0_writes_the_bound_port_and_removes_it_on_stop(server: Server) -> None:
    server.start()  # --port 0 --port-file: the helper reads the port from the file
    port_file = server.log_path.with_name(server.log_path.name + ".port")
    assert int(port_file.read_text()) == server.port > 0
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert not port_file.exists()  # no stale port for the next reader

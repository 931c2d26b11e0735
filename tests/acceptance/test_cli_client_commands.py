"""`auditlake publish`, `query` and `export` against a real server."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from .helpers import AUDITLAKE, Server, cli_env, create_key


def run(
    args: list[str], key: str, url: str, cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(), "AUDITLAKE_URL": url, "AUDITLAKE_API_KEY": key}
    # umask 022, the usual one: files made without care are world-readable.
    return subprocess.run(
        [str(AUDITLAKE), *args], input=stdin, env=env, cwd=cwd,
        capture_output=True, text=True, timeout=60, check=False, umask=0o022,
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_publish_query_and_export(tmp_path: Path, server: Server, data_dir: Path) -> None:
    key = create_key(data_dir, "acme")
    server.start()
    lines = [
        json.dumps({"id": f"p{n}", "action": "user.signed_in" if n % 2 else "monitor.down",
                    "actor": {"id": f"u{n % 7}", "name": f"Name\x1b[31m{n}"}})
        for n in range(2500)
    ]  # fmt: skip
    stdin = "\n".join(lines) + "\n"
    first = run(["publish", "-", "--batch-size", "1000"], key, server.url, tmp_path, stdin)
    assert first.returncode == 0, first.stderr
    assert "published 2500 events: 2500 new, 0 duplicates" in first.stderr
    again = run(["publish", "-"], key, server.url, tmp_path, stdin)
    assert "2500 duplicates" in again.stderr

    found = run(["query", "--action", "user.*", "--actor-id", "u3", "--json", "--limit", "2000"],
                key, server.url, tmp_path)  # fmt: skip
    events = [json.loads(line) for line in found.stdout.splitlines()]
    expected = {f"p{n}" for n in range(2500) if n % 2 and n % 7 == 3}
    assert {e["id"] for e in events} == expected
    table = run(["query", "--limit", "5"], key, server.url, tmp_path)
    assert table.returncode == 0 and "\x1b" not in table.stdout  # control characters escaped

    out = tmp_path / "all.ndjson"
    exported = run(["export", "--output", str(out)], key, server.url, tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert len(out.read_text().splitlines()) == 2500

    bad = run(["publish", "-"], key, server.url, tmp_path, '{"action": "a"}\nnot json\n')
    assert bad.returncode != 0 and bad.stderr.strip().startswith("error: line 2")
    # What the server refuses is named by its input line and field.
    refused = run(["publish", "-", "--batch-size", "2"], key, server.url, tmp_path,
                  '{"action": "a"}\n{"action": "b"}\n\n{"action": "c", "zzz": 1}\n')  # fmt: skip
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "line 4 zzz: " in refused.stderr and "2 events published before" in refused.stderr


@pytest.mark.timeout(120)
def test_export_writes_a_private_file_and_nothing_on_stdout(
    tmp_path: Path, server: Server, data_dir: Path
) -> None:
    key = create_key(data_dir, "acme")
    server.start()
    events = "".join(json.dumps({"id": f"x{n}", "action": "a.b"}) + "\n" for n in range(30))
    assert run(["publish", "-"], key, server.url, tmp_path, events).returncode == 0
    for fmt, lines in (("ndjson", 30), ("csv", 31)):
        out = tmp_path / f"all.{fmt}"
        stale = tmp_path / f"all.{fmt}.partial"  # left world-readable by an older run
        stale.write_text("old")
        stale.chmod(0o644)
        exported = run(["export", "--format", fmt, "-o", str(out)], key, server.url, tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout == ""  # not a terminal: no progress, no blank line
        assert exported.stderr == f"wrote {out}\n"
        assert len(out.read_text().splitlines()) == lines
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert not stale.exists()
    bad = run(["export", "--format", "xml", "-o", str(tmp_path / "x.xml")], key, server.url,
              tmp_path)  # fmt: skip
    assert bad.returncode == 1 and bad.stdout == "", (bad.stdout, bad.stderr)
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1, bad.stderr
    assert "xml" in bad.stderr
    assert sorted(p.name for p in tmp_path.glob("x.xml*")) == []

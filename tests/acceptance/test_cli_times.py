"""Time flags on the real command line: a form the API would refuse is one
`error:` line naming the flag and the accepted forms, and exit code 1, before
any server, lake or config is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditlake.core.times import ACCEPTED_FORMS

from .helpers import run_cli


@pytest.mark.timeout(120)
def test_bad_time_flags_are_one_error_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    cases = [
        (["query", "--since", "1h30m"], "since: '1h30m'"),
        (["query", "--lake", "--tenant", "acme", "--until", "2026-02-30", *data], "until:"),
        (["export", "--api-key", "k", "-o", "out.csv", "--since", "15M"], "since: '15M'"),
        (["rehydrate", "--since", "7d", "--until", "yesterday", *data], "until: 'yesterday'"),
        (["poll", "cloudflare", "--since", "2016-12-31T23:59:59", "--until", "1h", *data],
         "offset"),
    ]  # fmt: skip
    for args, words in cases:
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
        assert words in lines[0] and ACCEPTED_FORMS in lines[0], (args, lines[0])
        assert done.stdout == ""
    assert not (tmp_path / "out.csv").exists()

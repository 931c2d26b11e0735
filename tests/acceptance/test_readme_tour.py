"""The README's tour, run as written against a real `auditlake serve`.

Only the port (a free one instead of 8080), the location of `.venv/bin` and
the data folder (through AUDITLAKE_DATA_DIR) differ from what a reader runs.
"""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

from .helpers import AUDITLAKE, Server, cli_env

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    block = re.search(r"<!-- tour:start -->\s*```sh\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert block, "README has no tour block"
    return block[1]


@pytest.mark.timeout(120)
def test_readme_tour_works_as_written(tmp_path: Path, server: Server, data_dir: Path) -> None:
    server.start()
    script = (
        tour_script()
        .replace("http://127.0.0.1:8080", server.url)
        .replace(".venv/bin/", f"{AUDITLAKE.parent}/")
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        check=False,
        env={**cli_env(), "AUDITLAKE_DATA_DIR": str(data_dir)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"status":"created"') == 3
    assert "user.signed_in" in done.stdout and "monitor.down" in done.stdout
    with (tmp_path / "acme-events.csv").open() as exported:
        rows = list(csv.DictReader(exported))
    assert sorted(r["action"] for r in rows) == ["monitor.down", "monitor.up", "user.signed_in"]

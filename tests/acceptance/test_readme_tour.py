"""The README's tour, run as written against a real `auditlake serve`.

Only the port (a free one instead of 8080), the location of `.venv/bin` and
the data folder (through AUDITLAKE_DATA_DIR) differ from what a reader runs.
"""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


def tour_script() -> str:
    text = README.read_text()
    block = re.search(r"<!-- tour:start -->\s*```sh\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert block, "README has no tour block"
    return block[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_readme_tour_works_as_written(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AUDITLAKE_DATA_DIR": str(tmp_path / "data"), "AUDITLAKE_PORT": str(port)}
    env.pop("AUDITLAKE_API_KEY", None)
    server = subprocess.Popen([BIN / "auditlake", "serve"], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.1)
        script = (
            tour_script().replace("http://127.0.0.1:8080", url).replace(".venv/bin/", f"{BIN}/")
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            check=False,
            env=env,
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
    finally:
        server.kill()
        server.wait()

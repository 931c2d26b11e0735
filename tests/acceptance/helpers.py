"""Running the real `auditlake` command line as a subprocess, and reading its
SQLite file from the outside, for the acceptance tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

AUDITLAKE = Path(sys.executable).parent / "auditlake"
READY_SECONDS = 30.0
STOP_SECONDS = 20.0


def cli_env() -> dict[str, str]:
    """This process's environment without any AUDITLAKE_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AUDITLAKE_")}


def run_cli(
    *args: str, cwd: Path, timeout: float = 30.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `auditlake ARGS...` to completion and capture its output."""
    return subprocess.run(
        [str(AUDITLAKE), *args],
        cwd=cwd,
        env={**cli_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def create_key(data_dir: Path, tenant: str, *scopes: str) -> str:
    """`auditlake keys create`: the secret it prints alone on stdout."""
    flags = [part for scope in scopes or ("ingest", "read") for part in ("--scope", scope)]
    done = run_cli(
        "keys", "create", "--tenant", tenant, *flags, "--data-dir", str(data_dir),
        cwd=data_dir.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret and "\n" not in secret, done.stdout
    return secret


class Server:
    """One `auditlake serve` process on 127.0.0.1, on a port the system picks
    (`--port 0`), which the server writes to its `--port-file`."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        config: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.config = config
        self.env = env or {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until /readyz answers 200."""
        self._spawn()
        if not self._wait_ready():
            self.kill()
            raise RuntimeError(f"auditlake serve did not get ready:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no final commit, no flush."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        if process is not None:
            process.wait(timeout=STOP_SECONDS)

    def stop(self, *, whole_group: bool = False) -> int:
        """SIGTERM (graceful shutdown); the exit code. `whole_group`: to the
        server and its children at once, as a service manager does."""
        process = self.process
        assert process is not None
        if process.poll() is None and whole_group:
            os.killpg(process.pid, signal.SIGTERM)
        elif process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log(self) -> str:
        """Everything the server processes wrote so far (all starts)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _spawn(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.port = 0
        self._port_file.unlink(missing_ok=True)
        command = [
            str(AUDITLAKE), "serve", "--data-dir", str(self.data_dir), "--port", "0",
            "--port-file", str(self._port_file), "--log-level", "warning",
        ]  # fmt: skip
        if self.config is not None:
            command += ["--config", str(self.config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.data_dir.parent,
                env={**cli_env(), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as under a service manager
            )

    @property
    def _port_file(self) -> Path:
        return self.log_path.with_name(self.log_path.name + ".port")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if not self.port:  # written whole (renamed into place) once it listens
                if not self._port_file.exists():
                    time.sleep(0.02)
                    continue
                self.port = int(self._port_file.read_text())
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False


def stored_keys(db_path: Path) -> Counter[tuple[str, str]]:
    """How many rows each (tenant, id) has in the events table, read-only."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        return Counter(conn.execute("SELECT tenant, id FROM events"))
    finally:
        conn.close()


def stored_row_count(db_path: Path) -> int:
    """COUNT(*) of the events table, read-only."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()

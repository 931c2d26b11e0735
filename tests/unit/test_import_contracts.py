"""The layering of pyproject's `[tool.importlinter]` contracts holds, and the
contracts can fail: a wrong import put into a copy of the package breaks
the contract it is about."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the package under `source`, with the repo's contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold(tmp_path: Path) -> None:
    result = lint(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong", "contract"),
    [
        ("core/scratch.py", "import auditlake.web.app", "The core is pure"),
        ("cli/scratch.py", "import auditlake.sqlite_db", "use a database helper"),
        ("web/scratch.py", "import auditlake.postgres_db", "use a database helper"),
        ("web/scratch.py", "from auditlake.store import sqlite", "names a concrete backend"),
        ("lake/scratch.py", "import auditlake.journal.sqlite_reader", "names a concrete backend"),
        ("vendors/scratch.py", "import auditlake.store.base", "Vendor code is pure"),
        ("runtime.py", "import auditlake.store.sqlite", "names a concrete backend"),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tmp_path: Path, module: str, wrong: str, contract: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "auditlake", copy / "auditlake")
    (copy / "auditlake" / module).write_text(f"from __future__ import annotations\n\n{wrong}\n")
    result = lint(copy, tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(contract in line for line in broken), result.stdout

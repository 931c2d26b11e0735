"""The repo stands alone: locked installs that match pyproject.toml, and no
file that points at the machine it was written on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKFILE = ROOT / "scripts" / "lockfile.py"


def lock_check(root: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(LOCKFILE), "check", "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_the_committed_locks_match_pyproject() -> None:
    result = lock_check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"msgspec>=0.18"', '"msgspec>=0.19"'),  # a tightened pin
        ('"rich>=13",', '"rich>=13",\n  "orjson>=3",'),  # a new dependency
        ('"schemathesis>=4.0",', ""),  # a test tool removed
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
    ],
)
def test_a_dependency_edit_without_a_new_lock_fails_the_check(
    project_copy: Path, old: str, new: str
) -> None:
    pyproject = project_copy / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new, 1))
    result = lock_check(project_copy)
    assert result.returncode == 1
    assert "run `make lock`" in result.stderr
    assert "run.lock" in result.stderr and "test.lock" in result.stderr


def test_edits_outside_the_dependency_tables_keep_the_locks(project_copy: Path) -> None:
    pyproject = project_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert lock_check(project_copy).returncode == 0


def test_a_missing_lock_fails_the_check(project_copy: Path) -> None:
    (project_copy / "requirements" / "run.lock").unlink()
    result = lock_check(project_copy)
    assert result.returncode == 1 and "run.lock is missing" in result.stderr


def test_no_file_names_a_path_outside_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    # The folder this clone sits in, and the places checkouts live on the
    # machines this was written on (CI's clone sits in a temporary folder);
    # a relative path out of the repo is what `.ci/run`'s lone clone catches.
    outside = [f"{ROOT.parent}/".encode(), b"/work/", b"/home/", b"/Users/"]
    offenders = []
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if path.is_file() and path != Path(__file__):
            body = path.read_bytes()
            offenders += [f"{name.decode()}: {o.decode()}" for o in outside if o in body]
    assert offenders == []

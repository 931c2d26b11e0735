"""Write and check the lock files that `make run` and `make test` install from.

- `requirements/run.lock`: what serving needs (the project's dependencies and
  its `lake` and `postgres` extras), every package pinned with its hashes.
- `requirements/test.lock`: the same pins plus the test tools (the `test`
  extra); `run.lock` is compiled with it as constraints, so the two agree.

Both are written by `uv pip compile` for CPython 3.11 on x86_64 Linux (the
machine the suite runs on; each pin carries the hashes of all its published
files, so pip checks whichever one it picks) and carry the SHA-256 of the dependency tables of
`pyproject.toml` they were compiled from; `check` fails when that table has
changed since, so a dependency edit without `make lock` fails `make test`.

Usage: `python scripts/lockfile.py write [--upgrade]` (needs `uv` and the
package index) or `python scripts/lockfile.py check` (offline, stdlib only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = "# pyproject.toml dependencies sha256: "
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-unknown-linux-gnu")
# test.lock first: run.lock takes its pins as constraints, so the two agree
# and the test tools' own requirements (moto's python-dateutil<3) bind both.
LOCKS = {
    "test.lock": ["--extra", "lake", "--extra", "postgres", "--extra", "test"],
    "run.lock": [
        "--extra",
        "lake",
        "--extra",
        "postgres",
        "--constraint",
        "requirements/test.lock",
    ],
}


def dependency_digest(pyproject: Path) -> str:
    """SHA-256 of what resolution depends on: requires-python, dependencies
    and optional-dependencies (not the version, description or tool tables)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    tables = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def write(root: Path, upgrade: bool) -> None:
    """Compile both locks (keeping existing pins unless `upgrade`) and stamp them."""
    digest = dependency_digest(root / "pyproject.toml")
    env = {**os.environ, "UV_NATIVE_TLS": "1"}  # the system's CA bundle, as pip uses
    for name, extra_args in LOCKS.items():
        command = [
            *("uv", "pip", "compile", "pyproject.toml", "--generate-hashes", *PLATFORM),
            *("--quiet", "--custom-compile-command", "make lock", "-o", f"requirements/{name}"),
            *extra_args,
            *(["--upgrade"] if upgrade else []),
        ]
        subprocess.run(command, cwd=root, env=env, check=True)
        path = root / "requirements" / name
        lines = [line for line in path.read_text().splitlines() if not line.startswith(STAMP)]
        path.write_text("\n".join([STAMP + digest, *lines]) + "\n")


def check(root: Path) -> list[str]:
    """Problems with the locks under `root`: missing, or stale against pyproject.toml."""
    digest = dependency_digest(root / "pyproject.toml")
    problems = []
    for name in LOCKS:
        path = root / "requirements" / name
        if not path.exists():
            problems.append(f"requirements/{name} is missing: run `make lock`")
            continue
        first = path.read_text().partition("\n")[0]
        if first != STAMP + digest:
            problems.append(
                f"requirements/{name} was not compiled from this pyproject.toml's "
                "dependencies: run `make lock` and commit the result"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--upgrade", action="store_true", help="write: newest allowed versions")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder")
    args = parser.parse_args()
    if args.command == "write":
        write(args.root, args.upgrade)
        return 0
    problems = check(args.root)
    for problem in problems:
        print(f"lock check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

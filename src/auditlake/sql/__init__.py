"""The SQL of every backend, as files: `sql/<backend>/<schema>/` holds a
schema's numbered migrations (`NNNN_name.sql`, applied in order) and its
named statements (`queries.sql`, each after a `-- name: <name>` line).

This loader reads them as text and knows no database driver; each backend's
helper (`sqlite_db`, and later PostgreSQL's) runs them.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_MIGRATION = re.compile(r"(\d{4})_[a-z0-9_]+\.sql", re.ASCII)
_NAMED = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def statements(backend: str, schema: str) -> dict[str, str]:
    """The named statements of `sql/<backend>/<schema>/queries.sql`, without
    their trailing semicolons. FileNotFoundError if there is none."""
    text = _folder(backend, schema).joinpath("queries.sql").read_text()
    parts = _NAMED.split(text)
    return {parts[i]: parts[i + 1].strip().rstrip(";") for i in range(1, len(parts), 2)}


def migrations(backend: str, schema: str) -> list[tuple[int, str, str]]:
    """The schema's migrations as (version, file name, SQL), oldest first."""
    found = []
    for entry in _folder(backend, schema).iterdir():
        match = _MIGRATION.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), entry.name, entry.read_text()))
    return sorted(found)


def _folder(backend: str, schema: str) -> resources.abc.Traversable:
    return resources.files(__name__).joinpath(backend, schema)

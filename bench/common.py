"""Helpers shared by the benchmarks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import apsw

import auditlake
from auditlake.core.event import StoredEvent
from auditlake.journal.sqlite import journal_row
from auditlake.store.sqlite_recorder import search_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
Row = tuple[Any, ...]
Rows = tuple[list[Row], list[Row], list[Row]]


def journal_rows(stored: list[StoredEvent], first_seq: int) -> list[Row]:
    """The `events` (journal) rows the group commit writes for `stored`:
    what an acknowledgement waits for (the product's own row builder)."""
    return [journal_row(seq, item) for seq, item in enumerate(stored, start=first_seq)]


def index_rows(stored: list[StoredEvent], first_seq: int) -> Rows:
    """The store's (event_index, event_targets, events_text) rows for
    `stored`, built as the recorder builds them (`search_rows`)."""
    index: list[Row] = []
    targets: list[Row] = []
    texts: list[Row] = []
    for seq, item in enumerate(stored, start=first_seq):
        index_row, target_rows, text_row = search_rows(seq, item.event, item.occurred_us)
        index.append(index_row)
        targets += target_rows
        texts.append(text_row)
    return index, targets, texts


def schema_fingerprint() -> str:
    """A hash of the embedded journal and store schemas and queries (stale caches)."""
    digest = hashlib.sha256()
    for schema in ("journal", "store"):
        folder = resources.files("auditlake.sql").joinpath("sqlite", schema)
        for name in sorted(e.name for e in folder.iterdir() if e.name.endswith(".sql")):
            digest.update(f"{schema}/{name}".encode() + folder.joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (`values` need not be sorted); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(int(rank), len(ordered)) - 1]


def python_loop_ms() -> float:
    """Milliseconds for a fixed pure-Python loop: how fast this shared machine
    runs at the moment (the same code's figures drift with it)."""
    started = time.perf_counter()
    total = 0
    for number in range(2_000_000):
        total += number
    return (time.perf_counter() - started) * 1000


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), ""
        )
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "python": sys.version.split()[0],
        "sqlite": apsw.sqlite_lib_version(),  # the library auditlake uses
        "git_commit": commit,  # of the checkout; see auditlake_source for what ran
        "python_loop_ms": python_loop_ms(),
        "auditlake_source": str(Path(auditlake.__file__).parent),
    }


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Save `figures` under bench/results/ (gitignored) and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = RESULTS / f"{name}-{stamp}.json"
    dest.write_text(json.dumps(figures, indent=2))
    return dest

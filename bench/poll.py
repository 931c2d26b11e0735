"""Polling throughput: events/s from a (fake) Cloudflare API into the store.

    .venv/bin/python bench/poll.py [--events N] [--quick]

For each API version, over the same N events of one account held by the fake
Cloudflare API of the test suite (an HTTP server on 127.0.0.1, in a process
of its own as a remote API would be, yet on the same two cores):

(a) fetch only: the fetcher pages through the whole window and drops the
    items: what the API and the HTTP client alone allow;
(b) poll to searchable: the embedded service (journal, recorder child process,
    store) with a poller for that account; the time from the start of the
    first poll until every event is journaled and indexed for search.

It prints events/s of both and their ratio (b)/(a), measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from auditlake.app import build_services
from auditlake.config import load_settings
from auditlake.pollers.base import Window
from auditlake.pollers.cloudflare import make_fetcher
from common import ROOT, environment, write_results

sys.path.insert(0, str(ROOT))
from tests.fake_cloudflare import FakeCloudflare, v1_item, v2_item

ACCOUNT = "0a1b2c3d4e5f"
TOKEN = "bench-token"


def serve_fake(events: int, start: datetime, pipe: Connection) -> None:
    """The fake API with `events` per version, until the pipe closes (child process)."""
    with FakeCloudflare(token=TOKEN) as fake:
        for api, make in (("v1", v1_item), ("v2", v2_item)):
            items = [make(n, start + timedelta(milliseconds=n), ACCOUNT) for n in range(events)]
            fake.add(f"{ACCOUNT}{api}", items)
        pipe.send(fake.base_url)
        with contextlib.suppress(EOFError):
            pipe.recv()  # "stop"


def source_block(base_url: str, api: str, start: datetime) -> dict[str, Any]:
    return {
        "name": f"bench-{api}", "account_id": f"{ACCOUNT}{api}", "api": api,
        "base_url": base_url, "token_env": "BENCH_TOKEN", "poll_interval": 3600.0,
        "safety_lag": 0.0, "initial_checkpoint": start.isoformat(), "page_size": 1000,
    }  # fmt: skip


def fetch_only(base_url: str, api: str, start: datetime, events: int) -> float:
    settings = load_settings(
        env={"BENCH_TOKEN": TOKEN},
        overrides={"sources": {"cloudflare": [source_block(base_url, api, start)]}},
    )
    window = Window(start, datetime.now(UTC) + timedelta(seconds=1))
    with httpx.Client(timeout=30.0) as client:
        fetcher = make_fetcher(settings.sources.cloudflare[0], client)
        began = time.perf_counter()
        fetched = sum(len(page) for page in fetcher.pages(window))
        seconds = time.perf_counter() - began
    assert fetched == events, fetched
    return events / seconds


def poll_to_searchable(
    base_url: str, api: str, start: datetime, events: int, folder: Path
) -> float:
    settings = load_settings(
        env={"BENCH_TOKEN": TOKEN},
        overrides={
            "data_dir": str(folder / f"data-{api}"),
            "sources": {"cloudflare": [source_block(base_url, api, start)]},
        },
    )
    services = build_services(settings)
    assert services.pollers is not None
    pollers, services.pollers = services.pollers, None  # started by hand, below
    services.start()
    try:
        began = time.perf_counter()
        result = pollers.runners[0].poller.poll_once()
        assert result.created == events, result
        services.recorder.sync().result(timeout=600)  # type: ignore[union-attr]
        seconds = time.perf_counter() - began
    finally:
        pollers.close()
        services.close()
    return events / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 events")
    args = parser.parse_args()
    events = 10_000 if args.quick else args.events
    folder = Path(tempfile.mkdtemp(prefix="auditlake-bench-poll-"))
    start = datetime.now(UTC) - timedelta(days=1)
    figures: dict[str, Any] = {"benchmark": "poll", **environment(), "events": events}
    parent, child_end = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve_fake, args=(events, start, child_end))
    child.start()
    base_url = parent.recv()
    try:
        for api in ("v1", "v2"):
            fetched = fetch_only(base_url, api, start, events)
            searchable = poll_to_searchable(base_url, api, start, events, folder)
            figures[api] = {
                "fetch_events_per_s": fetched,
                "searchable_events_per_s": searchable,
                "ratio": searchable / fetched,
            }
            print(
                f"{api}: fetch only {fetched:,.0f} events/s; poll to searchable "
                f"{searchable:,.0f} events/s; ratio {searchable / fetched:.2f}"
            )
    finally:
        parent.send("stop")
        child.join(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"machine speed: {figures['python_loop_ms']:.0f} ms for bench/common.py's Python loop")
    print(f"figures written to {write_results('poll', figures)}")


if __name__ == "__main__":
    main()

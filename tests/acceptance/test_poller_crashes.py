"""`auditlake serve` polling two Cloudflare accounts (v1 and v2) of a fake API
while events keep arriving, some of them late, and SIGKILLed at random points
several times: in the end the stored set is the API's set, each event once,
in its account's tenant, and no checkpoint ever passed now - safety_lag."""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tests.fake_cloudflare import FakeCloudflare, v1_item, v2_item

from .helpers import Server, stored_keys

PER_ACCOUNT = 10_000
ACCOUNTS = {"0a1b2c3d4e5f": ("v1", v1_item), "9f8e7d6c5b4a": ("v2", v2_item)}
SPAN_SECONDS = 16.0  # event times run from 4 s before the start to 12 s after
LAG_SECONDS = 6.0
LATE_SECONDS = 4.0  # some events show up this much after their time (< the lag)
KILLS = 4
TOKEN = "cf-secret-token-0123456789"
DEADLINE_SECONDS = 120.0


def write_config(path: Path, base_url: str, start: datetime) -> None:
    blocks = [
        "[[sources.cloudflare]]\n"
        f'name = "cf-{api}"\naccount_id = "{account}"\napi = "{api}"\n'
        f'base_url = "{base_url}"\ntoken_env = "CLOUDFLARE_TOKEN"\n'
        f"poll_interval = 0.3\nsafety_lag = {LAG_SECONDS}\npage_size = 250\n"
        f'initial_checkpoint = "{(start - timedelta(minutes=1)).isoformat()}"\n'
        "timeout_seconds = 5.0\nmax_attempts = 3\nmax_backoff_seconds = 1.0\n"
        for account, (api, _make) in ACCOUNTS.items()
    ]
    path.write_text("\n".join(blocks))


def load_fake(fake: FakeCloudflare, start: datetime, rng: random.Random) -> set[tuple[str, str]]:
    """Events spread over the span; every fifth chunk of 100 is published late."""
    expected = set()
    step = SPAN_SECONDS / PER_ACCOUNT
    for account, (_api, make) in ACCOUNTS.items():
        items = [
            make(n, start + timedelta(seconds=n * step - 4.0), account) for n in range(PER_ACCOUNT)
        ]
        expected |= {(account, item["id"]) for item in items}
        for chunk in range(0, PER_ACCOUNT, 100):
            part = items[chunk : chunk + 100]
            late = chunk // 100 % 5 == 0
            last = start + timedelta(seconds=(chunk + len(part)) * step - 4.0)
            delay = timedelta(seconds=rng.uniform(1.0, LATE_SECONDS)) if late else None
            fake.add(account, part, visible_after=last + delay if delay else None)
    return expected


def checkpoints_behind_now(pollers_db: Path) -> None:
    """Every stored checkpoint is at most now - lag (read from the outside)."""
    if not pollers_db.exists():
        return
    now_us = time.time() * 1_000_000
    with sqlite3.connect(f"file:{pollers_db}?mode=ro", uri=True, timeout=5.0) as conn:
        try:
            rows = conn.execute("SELECT source, checkpoint_us FROM checkpoints").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return
    for source, checkpoint_us in rows:
        assert checkpoint_us <= now_us - LAG_SECONDS * 1_000_000, (source, checkpoint_us)


def test_polling_survives_sigkills_without_gaps_or_duplicates(tmp_path: Path) -> None:
    rng = random.Random(7)
    start = datetime.now(UTC)
    with FakeCloudflare(token=TOKEN) as fake:
        expected = load_fake(fake, start, rng)
        config = tmp_path / "auditlake.toml"
        write_config(config, fake.base_url, start)
        data_dir = tmp_path / "data"
        server = Server(data_dir, tmp_path / "server.log", config=config,
                        env={"CLOUDFLARE_TOKEN": TOKEN})  # fmt: skip
        journal = data_dir / "journal.db"
        try:
            server.start()
            for _ in range(KILLS):
                until = time.monotonic() + rng.uniform(1.0, 3.0)
                while time.monotonic() < until:
                    checkpoints_behind_now(data_dir / "pollers.db")
                    time.sleep(0.1)
                server.kill()
                time.sleep(rng.uniform(0.0, 0.5))
                server.start()
            deadline = time.monotonic() + DEADLINE_SECONDS
            while len(stored_keys(journal)) < len(expected):
                assert time.monotonic() < deadline, f"{len(stored_keys(journal))} stored"
                checkpoints_behind_now(data_dir / "pollers.db")
                time.sleep(0.2)
            # The poll that journaled the last events reports its success
            # just after: wait for it rather than racing it.
            metrics = ""
            while 'last_success_timestamp_seconds{source="cf-v1"}' not in metrics:
                assert time.monotonic() < deadline, "no successful poll reported"
                metrics = httpx.get(f"{server.url}/metrics", timeout=5.0).text
                time.sleep(0.2)
            server.stop()
        finally:
            server.kill()
    stored = stored_keys(journal)
    assert set(stored) == expected
    assert all(count == 1 for count in stored.values())
    checkpoints_behind_now(data_dir / "pollers.db")
    assert 'auditlake_poll_last_success_timestamp_seconds{source="cf-v1"}' in metrics
    assert TOKEN not in server.log() and TOKEN not in metrics

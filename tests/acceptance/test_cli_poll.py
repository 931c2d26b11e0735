"""`auditlake poll cloudflare` from the real command line against the fake
Cloudflare API: once (cron style), a backfill, and the errors an operator sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fake_cloudflare import FakeCloudflare, v2_item

from .helpers import run_cli, stored_keys
from .test_cli_errors import assert_one_error_line

TOKEN = "cf-cli-token-abcdef"
ACCOUNT = "0a1b2c3d4e5f"
NOW = datetime.now(UTC)


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(token=TOKEN) as api:
        recent = [v2_item(n, NOW - timedelta(minutes=30) + timedelta(seconds=n), ACCOUNT)
                  for n in range(300)]  # fmt: skip
        old = [v2_item(1000 + n, NOW - timedelta(days=10, seconds=n), ACCOUNT) for n in range(50)]
        api.add(ACCOUNT, recent + old)
        yield api


def config(tmp_path: Path, fake: FakeCloudflare) -> None:
    (tmp_path / "auditlake.toml").write_text(
        f'[[sources.cloudflare]]\nname = "cf"\naccount_id = "{ACCOUNT}"\ntenant = "security"\n'
        f'base_url = "{fake.base_url}"\ntoken_env = "CF_TOKEN"\nsafety_lag = 60.0\n'
        f'initial_checkpoint = "{(NOW - timedelta(hours=1)).isoformat()}"\npage_size = 100\n'
    )


def poll(tmp_path: Path, *args: str, token: str = TOKEN) -> object:
    return run_cli(
        "poll", "cloudflare", "--config", str(tmp_path / "auditlake.toml"), "--data-dir",
        str(tmp_path / "data"), *args, cwd=tmp_path, env={"CF_TOKEN": token}, timeout=60,
    )  # fmt: skip


@pytest.mark.timeout(120)
def test_once_then_again_then_a_backfill(tmp_path: Path, fake: FakeCloudflare) -> None:
    config(tmp_path, fake)
    first = poll(tmp_path, "--once", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["source"], report["fetched"], report["created"]) == ("cf", 300, 300)
    assert report["checkpoint"] is not None

    again = json.loads(poll(tmp_path, "--once", "--json").stdout)
    assert again["created"] == 0  # only the lag window was asked for again

    since = (NOW - timedelta(days=11)).isoformat()
    until = (NOW - timedelta(days=9)).isoformat()
    backfill = poll(tmp_path, "--since", since, "--until", until)
    assert backfill.returncode == 0, backfill.stderr
    assert "50 new" in backfill.stdout and "checkpoint" not in backfill.stdout
    keys = stored_keys(tmp_path / "data" / "journal.db")
    assert len(keys) == 350 and {tenant for tenant, _id in keys} == {"security"}


@pytest.mark.timeout(120)
def test_a_refused_token_fails_with_one_line_and_no_secret(
    tmp_path: Path, fake: FakeCloudflare
) -> None:
    config(tmp_path, fake)
    done = poll(tmp_path, "--once", token="not-the-token-xyz")
    assert done.returncode == 1
    assert "cf: poll failed" in done.stderr and "not-the-token-xyz" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
def test_operator_mistakes(tmp_path: Path, fake: FakeCloudflare) -> None:
    config(tmp_path, fake)
    assert_one_error_line(poll(tmp_path, "--once", "--source", "nope"), "nope")
    assert_one_error_line(poll(tmp_path, "--since", "2026-01-01T00:00:00Z"), "--until")
    assert_one_error_line(poll(tmp_path, "--once", token=""), "CF_TOKEN")

"""`auditlake poll cloudflare`: poll the configured Cloudflare accounts once
(cron style), backfill a window, or keep polling on the schedule."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from typing import Annotated

import msgspec
import typer
from rich.markup import escape

from auditlake.cli.common import (
    FILTERS,
    OUTPUT,
    TIME_FORMS,
    Command,
    ConfigOption,
    DataDirOption,
    Group,
    examples,
    settings_from,
)
from auditlake.config import Settings
from auditlake.core.query import parse_time
from auditlake.errors import AuditlakeError, ConfigError
from auditlake.pollers.poller import Poller, PollResult
from auditlake.pollers.runner import PollerGroup

app = typer.Typer(
    cls=Group,
    help="Poll vendor audit-log APIs into the journal.",
    epilog=examples("auditlake poll cloudflare --once --config auditlake.toml"),
    no_args_is_help=True,
)
EXAMPLES = examples(
    "auditlake poll cloudflare --once --config auditlake.toml",
    "auditlake poll cloudflare --since 2026-11-01 --until 2026-11-02",
)


@app.command(cls=Command, epilog=EXAMPLES)
def cloudflare(
    once: Annotated[
        bool, typer.Option("--once", help="Poll each account once, then exit.")
    ] = False,
    source: Annotated[
        list[str] | None,
        typer.Option(
            help=escape("Only the [[sources.cloudflare]] block named so; repeatable."),
            metavar="NAME",
            rich_help_panel=FILTERS,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help=f"Backfill from this time (needs --until): {TIME_FORMS}.",
            metavar="TIME",
            rich_help_panel=FILTERS,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Backfill up to this time (exclusive), in the same forms.",
            metavar="TIME",
            rich_help_panel=FILTERS,
        ),
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="One JSON line per poll.", rich_help_panel=OUTPUT)
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Poll the Cloudflare audit logs of the configured accounts.

    Without --once it polls on each account's schedule until interrupted.
    A backfill (--since and --until) fetches that window and leaves the
    checkpoints alone. The exit code is 1 if any poll failed.
    """
    from auditlake.app import build_ingest, build_journal, build_pollers  # the composition root

    window = _window(since, until)  # a mistyped flag is named before the config's problems
    settings = _only(settings_from(config, data_dir=data_dir), source or [])
    journal = build_journal(settings)
    journal.start()
    group = build_pollers(settings, build_ingest(journal), observer=None)
    try:
        if once or window is not None:
            failed = sum(not _poll(runner.poller, window, json) for runner in group.runners)
        else:
            _until_interrupted(group)
            failed = 0
    finally:
        group.close()
        journal.close()
    if failed:
        raise typer.Exit(1)


def _poll(poller: Poller, window: tuple[datetime, datetime] | None, as_json: bool) -> bool:
    try:
        result = poller.backfill(*window) if window else poller.poll_once()
    except AuditlakeError as exc:
        typer.echo(f"{poller.name}: poll failed: {exc.message}", err=True)
        return False
    _report(poller.name, result, as_json)
    return True


def _report(name: str, result: PollResult, as_json: bool) -> None:
    if as_json:
        typer.echo(msgspec.json.encode({"source": name, **msgspec.to_builtins(result)}).decode())
        return
    moved = f", checkpoint {result.checkpoint.isoformat()}" if result.checkpoint else ""
    typer.echo(
        f"{name}: {result.fetched} fetched, {result.created} new, {result.duplicates} "
        f"duplicates, {result.invalid} dead-lettered ({result.since.isoformat()} to "
        f"{result.before.isoformat()}{moved})"
    )


def _only(settings: Settings, names: list[str]) -> Settings:
    sources = settings.sources.cloudflare
    unknown = sorted(set(names) - {s.name for s in sources})
    if unknown:
        raise ConfigError(f"no [[sources.cloudflare]] block named {', '.join(unknown)}")
    if not sources:
        raise ConfigError("no [[sources.cloudflare]] block is configured (--config FILE)")
    chosen = tuple(s for s in sources if not names or s.name in names)
    kept = msgspec.structs.replace(settings.sources, cloudflare=chosen)
    return msgspec.structs.replace(settings, sources=kept)


def _window(since: str | None, until: str | None) -> tuple[datetime, datetime] | None:
    if since is None and until is None:
        return None
    if since is None or until is None:
        raise ConfigError("a backfill needs both --since and --until")
    now = datetime.now(UTC)
    start, end = parse_time(since, "since", now), parse_time(until, "until", now)
    if start >= end:
        raise ConfigError("--since must be before --until")
    return start, end


def _until_interrupted(group: PollerGroup) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    group.start()
    stop.wait()

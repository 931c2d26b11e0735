"""`auditlake rehydrate`: a window of lake events back into the hot store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import Progress, TextColumn

from auditlake.cli.common import (
    FILTERS,
    TIME_FORMS,
    ConfigOption,
    DataDirOption,
    examples,
    settings_from,
)
from auditlake.core.event import tenant_fault, to_micros
from auditlake.core.query import parse_time
from auditlake.errors import ConfigError, InvalidInput

DAY_US = 86_400 * 1_000_000
EXAMPLES = examples(
    "auditlake rehydrate --since 2026-03-01 --until 2026-03-08 --tenant acme",
    "auditlake rehydrate --since 400d --until 365d",
)


def rehydrate(
    since: Annotated[
        str,
        typer.Option(
            help=f"From this time (inclusive): {TIME_FORMS}.",
            metavar="TIME",
            rich_help_panel=FILTERS,
        ),
    ],
    until: Annotated[
        str,
        typer.Option(
            help="Up to this time (exclusive), in the same forms.",
            metavar="TIME",
            rich_help_panel=FILTERS,
        ),
    ],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this tenant; repeatable (default: all).",
            metavar="TENANT",
            rich_help_panel=FILTERS,
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Load a window of lake events back into the searchable store.

    Running it twice stores nothing twice. The events stay searchable for the
    rehydrated_days of the retention settings, then retention removes them.
    """
    from auditlake.app import build_ingest, build_journal, build_keeper, lake_objects
    from auditlake.lake.rehydrate import lake_tenants
    from auditlake.lake.rehydrate import rehydrate as run

    settings = settings_from(config, data_dir=data_dir)
    if not settings.lake.enabled:
        raise ConfigError("the lake is not enabled ([lake] enabled = false)")
    now = datetime.now(UTC)
    window = (
        to_micros(parse_time(since, "since", now)),
        to_micros(parse_time(until, "until", now)),
    )
    if window[0] >= window[1]:
        raise InvalidInput("--since must be before --until")
    objects = lake_objects(settings)
    for name in tenant or ():
        if (fault := tenant_fault(name)) is not None:
            raise InvalidInput(f"--tenant {name!r}: {fault}")
    tenants = tenant or lake_tenants(objects)
    keep_until = time.time_ns() // 1000 + settings.retention.rehydrated_days * DAY_US
    journal = build_journal(settings)
    journal.start()
    ingest = build_ingest(journal)
    keeper = build_keeper(settings)
    try:
        with Progress(TextColumn("{task.description} {task.completed:,} events")) as bar:
            task = bar.add_task("rehydrating")
            done = run(objects, ingest, keeper, tenants, window, keep_until,
                       on_page=lambda n: bar.advance(task, n))  # fmt: skip
    finally:
        keeper.close()
        journal.close()
    typer.echo(
        f"{done.read} events read from the lake: {done.created} rehydrated, "
        f"{done.duplicates} already in the store"
    )

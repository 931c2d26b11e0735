"""`auditlake consumers`: the journal consumers' dead letters (the archiver's)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer

from auditlake.cli.common import (
    Command,
    ConfigOption,
    DataDirOption,
    Group,
    examples,
    settings_from,
)
from auditlake.consumers.runner import ConsumerGroup
from auditlake.errors import ConfigError

app = typer.Typer(
    cls=Group,
    help="Inspect and replay what journal consumers gave up on.",
    epilog=examples("auditlake consumers dead-letters archiver"),
    no_args_is_help=True,
)
NameArgument = Annotated[str, typer.Argument(help="The consumer: archiver.", metavar="CONSUMER")]


@app.command(
    "dead-letters", cls=Command, epilog=examples("auditlake consumers dead-letters archiver")
)
def dead_letters(
    name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """List the events a consumer gave up on, with the reason.

    One JSON object per line.
    """
    group = _group(config, data_dir)
    try:
        letters = group.dead_letters.letters(group.runner(name).name)
    finally:
        group.close()
    for letter in letters:
        typer.echo(msgspec.json.encode(letter).decode())


@app.command(cls=Command, epilog=examples("auditlake consumers replay archiver"))
def replay(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Hand a consumer's dead letters to it again.

    The exit code is 1 if some still fail.
    """
    group = _group(config, data_dir)
    try:
        replayed, failing = group.runner(name).replay_dead_letters()
    finally:
        group.close()
    typer.echo(f"{name}: {replayed} replayed, {failing} still failing")
    if failing:
        raise typer.Exit(1)


def _group(config: ConfigOption, data_dir: str | None) -> ConsumerGroup:
    from auditlake.app import build_consumers  # the composition root

    settings = settings_from(config, data_dir=data_dir)
    if not settings.lake.enabled:
        raise ConfigError("no journal consumer is configured ([lake] enabled = false)")
    return build_consumers(settings)

"""`auditlake consumers`: the journal consumers' dead letters (the recorder's
and the archiver's; only the archiver's can be replayed: the recorder
indexes in journal order)."""

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
_LAKE_OFF = " (the archiver runs only with the lake on; here [lake] enabled = false)"
NameArgument = Annotated[
    str, typer.Argument(help="The consumer: recorder or archiver.", metavar="CONSUMER")
]


@app.command(
    "dead-letters", cls=Command, epilog=examples("auditlake consumers dead-letters archiver")
)
def dead_letters(
    name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """List the events a consumer gave up on, with the reason.

    One JSON object per line.
    """
    from auditlake.app import build_consumer_letters, consumer_names  # the composition root

    settings = settings_from(config, data_dir=data_dir)
    known = consumer_names(settings)
    if name not in known:
        off = _LAKE_OFF if name == "archiver" else ""
        raise ConfigError(f"no consumer named {name!r}{off}; known: {', '.join(known)}")
    letters, close = build_consumer_letters(settings)
    try:
        found = letters.letters(name)
    finally:
        close()
    for letter in found:
        typer.echo(msgspec.json.encode(letter).decode())


@app.command(cls=Command, epilog=examples("auditlake consumers replay archiver"))
def replay(name: NameArgument, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Hand a consumer's dead letters to it again.

    The exit code is 1 if some still fail.
    """
    if name == "recorder":
        raise ConfigError("the recorder indexes in journal order: its dead letters are only listed")
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
        raise ConfigError(f"no consumer can be replayed{_LAKE_OFF}")
    return build_consumers(settings)

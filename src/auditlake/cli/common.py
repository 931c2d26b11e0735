"""Options shared by commands, the help's shape, and settings loading for the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from auditlake.config import Settings, load_settings

# Option panels of `--help`, in the order users look for them.
FILTERS = "Filters"
OUTPUT = "Output"
SERVER = "Server"
SETTINGS = "Settings"
TIME_FORMS = "an RFC 3339 time, a date (midnight UTC) or a duration before now: 15m, 24h, 7d"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML config file.",
        envvar="AUDITLAKE_CONFIG",
        metavar="FILE",
        rich_help_panel=SETTINGS,
    ),
]
DataDirOption = Annotated[
    str | None,
    typer.Option(
        "--data-dir", help="Data folder (default: ./data).", metavar="DIR", rich_help_panel=SETTINGS
    ),
]


class _Argument(TyperArgument):
    """A positional argument shown by its name (`FILE`) alone."""

    def display_type_rich(self, ctx: Any) -> str | None:
        """No type column: typer would add `<str>` after the name."""
        return None

    def _usage_display_name(self) -> str:
        """The usage line's `KEY_ID` (optional: `[FILE]`, several: `FILE...`):
        typer 0.29 writes a required one as `{KEY_ID}`, which reads as a
        literal or a set of choices."""
        name = str(self.display_name_raw)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


def _without_type_tags(params: list[Any]) -> list[Any]:
    """Typer 0.29 shows each option's Python type (`<str>`, and `<bool>` on
    flags, `--help` too) unless it has a metavar, and each argument's type
    after its name. A flag takes no value, so it gets an empty metavar; a value
    option without one is named by its option name; arguments show no type."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif param.metavar is None:
            flag = isinstance(param, TyperOption) and (param.is_flag or param.count)
            param.metavar = "" if flag else (param.name or "value").upper()
    return params


class Command(TyperCommand):
    """A command whose `--help` shows value names (`TIME`), not type tags."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, with the help's metavars filled in."""
        return _without_type_tags(super().get_params(ctx))


class Group(TyperGroup):
    """A command group whose `--help` shows no type tags (see `Command`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters, with the help's metavars filled in."""
        return _without_type_tags(super().get_params(ctx))


def examples(*lines: str) -> str:
    """A help epilog showing example command lines (rich markup escaped)."""
    return "Examples:\n" + "\n".join(f"  {escape(line)}" for line in lines)


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """Settings from file, then AUDITLAKE_* environment, then flags.

    The CLI is the one place that reads the process environment.
    """
    return load_settings(config, os.environ, overrides)

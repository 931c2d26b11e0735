"""Options shared by commands, and settings loading for the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from auditlake.config import Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file.", envvar="AUDITLAKE_CONFIG"),
]
DataDirOption = Annotated[
    str | None, typer.Option("--data-dir", help="Data folder (default: ./data).")
]


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """Settings from file, then AUDITLAKE_* environment, then flags.

    The CLI is the one place that reads the process environment.
    """
    return load_settings(config, os.environ, overrides)

"""`auditlake serve`."""

from __future__ import annotations

from typing import Annotated

import typer

from auditlake.cli.common import ConfigOption, DataDirOption, settings_from


def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning...")] = None,
) -> None:
    """Serve the HTTP API on the embedded backend (SQLite in the data folder)."""
    from auditlake.app import serve as run_server

    settings = settings_from(config, data_dir=data_dir, host=host, port=port, log_level=log_level)
    run_server(settings)

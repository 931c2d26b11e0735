"""`auditlake serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from auditlake.cli.common import SERVER, ConfigOption, DataDirOption, examples, settings_from

EXAMPLES = examples(
    "auditlake serve",
    "auditlake serve --config auditlake.toml --host 0.0.0.0 --port 8080",
    "auditlake serve --port 0 --port-file port.txt",
)


def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind.", metavar="ADDRESS", rich_help_panel=SERVER)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind.", metavar="PORT", rich_help_panel=SERVER)
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="debug, info, warning or error.", metavar="LEVEL", rich_help_panel=SERVER
        ),
    ] = None,
    port_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the port the server listens on to this file (with --port 0, the "
            "system picks a free one).",
            metavar="FILE",
            rich_help_panel=SERVER,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API, on SQLite in the data folder.

    Settings come from the config file, then AUDITLAKE_* environment
    variables, then these options.
    """
    from auditlake.app import serve as run_server

    settings = settings_from(config, data_dir=data_dir, host=host, port=port, log_level=log_level)
    run_server(settings, port_file)

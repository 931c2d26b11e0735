"""The `auditlake` command line: one module per command group."""

from __future__ import annotations

import sys

import typer

from auditlake.cli import consumers, keys, poll, rehydrate, remote, serve
from auditlake.errors import AuditlakeError

app = typer.Typer(
    name="auditlake",
    help="Audit-log and event recorder: publish, keep durably, search, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(poll.app, name="poll")
app.add_typer(consumers.app, name="consumers")
app.command("query")(remote.query)
app.command("export")(remote.export)
app.command("publish")(remote.publish)
app.command("rehydrate")(rehydrate.rehydrate)


def main() -> None:
    """Entry point: run the CLI; an auditlake error is one line and exit code 1."""
    try:
        app()
    except AuditlakeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)

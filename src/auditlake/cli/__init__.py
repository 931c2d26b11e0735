"""The `auditlake` command line: one module per command group."""

from __future__ import annotations

import sys

import typer

from auditlake.cli import consumers, keys, poll, rehydrate, remote, serve
from auditlake.cli.common import Command, Group, examples
from auditlake.errors import AuditlakeError

app = typer.Typer(
    name="auditlake",
    cls=Group,
    help="Audit-log and event recorder: publish, keep durably, search, export.",
    epilog=examples(
        "auditlake serve --config auditlake.toml",
        "auditlake query --since 24h --action 'user.*'",
        "auditlake COMMAND --help",
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve", cls=Command, epilog=serve.EXAMPLES)(serve.serve)
app.command("query", cls=Command, epilog=remote.QUERY_EXAMPLES)(remote.query)
app.command("export", cls=Command, epilog=remote.EXPORT_EXAMPLES)(remote.export)
app.command("publish", cls=Command, epilog=remote.PUBLISH_EXAMPLES)(remote.publish)
app.command("rehydrate", cls=Command, epilog=rehydrate.EXAMPLES)(rehydrate.rehydrate)
app.add_typer(keys.app, name="keys")
app.add_typer(poll.app, name="poll")
app.add_typer(consumers.app, name="consumers")


def main() -> None:
    """Entry point: run the CLI; an auditlake error is one line and exit code 1."""
    try:
        app()
    except AuditlakeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)

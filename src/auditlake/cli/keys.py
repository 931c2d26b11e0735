"""`auditlake keys create|list|revoke`: API keys in the data folder."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from auditlake.cli.common import (
    Command,
    ConfigOption,
    DataDirOption,
    Group,
    examples,
    settings_from,
)
from auditlake.core.event import check_tenant
from auditlake.errors import InvalidInput, NotFound
from auditlake.keys.base import SCOPES, KeyStore, Scope

app = typer.Typer(
    cls=Group,
    help="Create, list and revoke API keys.",
    epilog=examples("auditlake keys create --tenant acme --scope ingest --scope read"),
    no_args_is_help=True,
)


def _store(config: ConfigOption, data_dir: str | None) -> KeyStore:
    from auditlake.app import build_keys  # the composition root

    return build_keys(settings_from(config, data_dir=data_dir))


@app.command(
    cls=Command,
    epilog=examples(
        "auditlake keys create --tenant acme --scope ingest --scope read",
        "auditlake keys create --tenant ops --scope admin --name 'backup job'",
    ),
)
def create(
    tenant: Annotated[
        str, typer.Option(help="The tenant the key writes and reads.", metavar="TENANT")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="ingest (default), read or admin; repeat for several.", metavar="SCOPE"),
    ] = None,
    name: Annotated[
        str, typer.Option(help="A label to recognise the key by.", metavar="TEXT")
    ] = "",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a key, printed once on stdout; only its hash is kept.

    Store the key where its user can read it: it cannot be shown again.
    """
    scope = scope or ["ingest"]
    unknown = sorted(set(scope) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    scopes: list[Scope] = [s for s in SCOPES if s in scope]
    check_tenant(tenant)  # before the data folder is created
    key, secret = _store(config, data_dir).create(tenant, scopes, name)
    typer.echo(
        f"created key {key.key_id} for tenant {key.tenant} ({', '.join(key.scopes)}); "
        "store it now, it is not shown again:",
        err=True,
    )
    typer.echo(secret)


@app.command("list", cls=Command, epilog=examples("auditlake keys list --json"))
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List keys: ids, tenants, scopes and names, never secrets."""
    keys = _store(config, data_dir).list()
    if as_json:
        typer.echo(msgspec.json.encode(keys).decode())
        return
    table = Table("key id", "tenant", "scopes", "name", "created", "revoked")
    for key in keys:
        table.add_row(
            key.key_id,
            key.tenant,
            ",".join(key.scopes),
            key.name,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    Console().print(table)


@app.command(cls=Command, epilog=examples("auditlake keys revoke KEY_ID"))
def revoke(
    key_id: Annotated[
        str, typer.Argument(help="The key id shown by `keys list`.", metavar="KEY_ID")
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke a key; servers refuse it within `key_cache_seconds`."""
    if not _store(config, data_dir).revoke(key_id):
        raise NotFound(f"no active key {key_id!r}")
    typer.echo(f"revoked {key_id}", err=True)

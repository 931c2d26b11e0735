"""Commands that talk to a running server: `query`, `export`, `publish`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from auditlake.cli.common import (
    FILTERS,
    OUTPUT,
    SERVER,
    SETTINGS,
    TIME_FORMS,
    ConfigOption,
    DataDirOption,
    examples,
    settings_from,
)
from auditlake.config import Settings
from auditlake.core.event import Event
from auditlake.core.query import parse_time
from auditlake.core.strict_json import refuse_duplicate_keys
from auditlake.errors import AuditlakeError, InvalidInput, MalformedInput
from auditlake.files import FILE_MODE

if TYPE_CHECKING:
    from auditlake.client import ApiError

EXPORT_FORMATS = ("ndjson", "csv")
UrlOption = Annotated[
    str, typer.Option(help="Server URL.", envvar="AUDITLAKE_URL", rich_help_panel=SERVER)
]
KeyOption = Annotated[
    str,
    typer.Option(
        "--api-key",
        help="API key.",
        envvar="AUDITLAKE_API_KEY",
        show_default=False,
        metavar="KEY",
        rich_help_panel=SERVER,
    ),
]
TenantOption = Annotated[
    str | None,
    typer.Option(help="Another tenant (admin keys).", metavar="TENANT", rich_help_panel=SERVER),
]
ActionFilter = Annotated[
    str | None,
    typer.Option(help="Exact, or a prefix like user.*", metavar="ACTION", rich_help_panel=FILTERS),
]
ActorIdFilter = Annotated[
    str | None, typer.Option(help="The actor's id.", metavar="ID", rich_help_panel=FILTERS)
]
ActorTypeFilter = Annotated[
    str | None, typer.Option(help="The actor's type.", metavar="TYPE", rich_help_panel=FILTERS)
]
TargetIdFilter = Annotated[
    str | None, typer.Option(help="A target's id.", metavar="ID", rich_help_panel=FILTERS)
]
TargetTypeFilter = Annotated[
    str | None, typer.Option(help="A target's type.", metavar="TYPE", rich_help_panel=FILTERS)
]
OutcomeFilter = Annotated[
    str | None, typer.Option(help="success or failure.", metavar="OUTCOME", rich_help_panel=FILTERS)
]
SourceFilter = Annotated[
    str | None,
    typer.Option(help="Where events came from: api, cloudflare:...", rich_help_panel=FILTERS),
]
SinceFilter = Annotated[
    str | None,
    typer.Option(help=f"From this time (inclusive): {TIME_FORMS}.", metavar="TIME",
                 rich_help_panel=FILTERS),
]  # fmt: skip
UntilFilter = Annotated[
    str | None,
    typer.Option(help="Before this time (exclusive), in the same forms.", metavar="TIME",
                 rich_help_panel=FILTERS),
]  # fmt: skip
WordsFilter = Annotated[
    str | None,
    typer.Option("--q", help="Words in names, ids, errors, metadata.", metavar="WORDS",
                 rich_help_panel=FILTERS),
]  # fmt: skip
QUERY_EXAMPLES = examples(
    "auditlake query --since 24h --action 'user.*'",
    "auditlake query --since 2026-11-01 --until 2026-11-02 --outcome failure --json",
    "auditlake query --lake --tenant acme --since 30d --q nginx",
)
EXPORT_EXAMPLES = examples(
    "auditlake export --since 7d --format csv --output last-week.csv",
)
PUBLISH_EXAMPLES = examples(
    "auditlake publish events.ndjson",
    "gunzip -c events.ndjson.gz | auditlake publish - --batch-size 1000",
)


def _filters(**given: str | None) -> dict[str, str]:
    """The given filters; a since/until in no accepted form stops here, before
    any request, with the message the server would give."""
    now = datetime.now(UTC)
    for name in ("since", "until"):
        if given.get(name) is not None:
            parse_time(str(given[name]), name, now)
    return {name: value for name, value in given.items() if value is not None}


def query(
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key (not with --lake).",
            envvar="AUDITLAKE_API_KEY",
            show_default=False,
            metavar="KEY",
            rich_help_panel=SERVER,
        ),
    ] = None,
    url: UrlOption = "http://127.0.0.1:8080",
    tenant: TenantOption = None,
    action: ActionFilter = None,
    actor_id: ActorIdFilter = None,
    actor_type: ActorTypeFilter = None,
    target_id: TargetIdFilter = None,
    target_type: TargetTypeFilter = None,
    outcome: OutcomeFilter = None,
    source: SourceFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    q: WordsFilter = None,
    order: Annotated[
        str, typer.Option(help="desc (newest first) or asc.", rich_help_panel=OUTPUT)
    ] = "desc",
    limit: Annotated[
        int, typer.Option(help="At most this many events.", metavar="N", rich_help_panel=OUTPUT)
    ] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="NDJSON instead of a table.", rich_help_panel=OUTPUT)
    ] = False,
    lake: Annotated[
        bool,
        typer.Option(
            "--lake", help="Read the lake, not a server (needs --tenant).", rich_help_panel=SETTINGS
        ),
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Search events on a server, or in the lake with --lake.

    Prints a table, or NDJSON with --json; newest first unless --order asc.
    """
    if limit < 1:
        raise InvalidInput("--limit must be at least 1")
    filters = _filters(
        action=action, actor_id=actor_id, actor_type=actor_type, target_id=target_id,
        target_type=target_type, outcome=outcome, source=source, since=since, until=until,
        q=q, order=order,
    )  # fmt: skip
    if lake:
        if tenant is None:
            raise InvalidInput("--lake needs --tenant")
        events = _take(
            _lake_search(settings_from(config, data_dir=data_dir), tenant, filters), limit
        )
        _show(events, as_json)
        return
    if not api_key:
        raise InvalidInput("an API key is needed: --api-key or AUDITLAKE_API_KEY")
    from auditlake.client import Client

    with Client(url, api_key) as client:
        _show(
            _take(client.search(page_size=min(limit, 1000), tenant=tenant, **filters), limit),
            as_json,
        )


def _show(events: Iterator[Event], as_json: bool) -> None:
    if as_json:
        for event in events:
            sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
        return
    _print_table(list(events))


def _lake_search(settings: Settings, tenant: str, filters: dict[str, str]) -> Iterator[Event]:
    """Every matching event of the lake, page by page."""
    from auditlake.app import lake_objects  # the composition root
    from auditlake.core.query import parse_query
    from auditlake.lake.reader import LakeReader

    search = parse_query(tenant, {**filters, "limit": "1000"}, now=datetime.now(UTC))
    reader = LakeReader(lake_objects(settings))
    page = reader.search(search)
    yield from page.events
    while page.next_after is not None:
        page = reader.search(search, after=page.next_after)
        yield from page.events


def export(
    api_key: KeyOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="File to write.", metavar="FILE", rich_help_panel=OUTPUT
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", help="ndjson or csv.", metavar="FORMAT", rich_help_panel=OUTPUT),
    ] = "ndjson",
    url: UrlOption = "http://127.0.0.1:8080",
    tenant: TenantOption = None,
    action: ActionFilter = None,
    actor_id: ActorIdFilter = None,
    actor_type: ActorTypeFilter = None,
    target_id: TargetIdFilter = None,
    target_type: TargetTypeFilter = None,
    outcome: OutcomeFilter = None,
    source: SourceFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    q: WordsFilter = None,
) -> None:
    """Export matching events from a server to a file, streamed.

    The file appears only once complete; a progress display shows the bytes.
    """
    filters = _filters(
        action=action, actor_id=actor_id, actor_type=actor_type, target_id=target_id,
        target_type=target_type, outcome=outcome, source=source, since=since, until=until,
        q=q, tenant=tenant,
    )  # fmt: skip
    from auditlake.client import Client

    if fmt not in EXPORT_FORMATS:  # before anything is shown or written
        raise InvalidInput(f"--format must be {' or '.join(EXPORT_FORMATS)}, not {fmt!r}")
    partial = output.with_name(output.name + ".partial")
    columns = (TextColumn("exporting"), TransferSpeedColumn(), TextColumn("{task.completed} B"))
    # On stderr, and only for a person watching: stdout stays clean, and a
    # display that is not a terminal would still print its final blank line.
    bar = Progress(*columns, console=Console(stderr=True), transient=True,
                   disable=not sys.stderr.isatty())  # fmt: skip
    try:
        with Client(url, api_key) as client, bar, _private_file(partial) as out:
            task = bar.add_task("export", total=None)
            for chunk in client.export(fmt, **filters):
                out.write(chunk)
                bar.advance(task, len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)  # an incomplete export leaves no file
        raise
    partial.replace(output)  # the file appears only once complete, private as it was made
    typer.echo(f"wrote {output}", err=True)


def _private_file(path: Path) -> IO[bytes]:
    """`path` opened for writing from empty, readable by the user alone
    (FILE_MODE, 0600: audit data), whatever the umask or an older file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode does not apply to an existing file
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def publish(
    api_key: KeyOption,
    source_file: Annotated[
        str, typer.Argument(metavar="FILE", help="NDJSON file of events, or - for stdin.")
    ] = "-",
    url: UrlOption = "http://127.0.0.1:8080",
    batch_size: Annotated[
        int, typer.Option(help="Events per request (at most 1000).", metavar="N")
    ] = 500,
) -> None:
    """Publish NDJSON events (one per line) to a server in batches.

    Events that carry an id are safe to publish again: a re-sent event is a
    duplicate, not a second copy.
    """
    if not 1 <= batch_size <= 1000:
        raise InvalidInput("--batch-size must be between 1 and 1000")
    from auditlake.client import ApiError, Client

    stream: IO[bytes] = sys.stdin.buffer if source_file == "-" else _open(source_file)
    total = created = 0
    columns = (TextColumn("publishing"), BarColumn(), TextColumn("{task.completed} events"))
    with stream, Client(url, api_key, retries=3) as client, Progress(*columns) as bar:
        task = bar.add_task("publish", total=None)
        for numbers, batch in _batches(stream, batch_size):
            try:
                result = client.publish_many(batch)
            except ApiError as exc:
                raise AuditlakeError(_refusal(exc, numbers, total)) from None
            total += len(batch)
            created += result.created
            bar.advance(task, len(batch))
    typer.echo(f"published {total} events: {created} new, {total - created} duplicates", err=True)


def _refusal(error: ApiError, numbers: list[int], published: int) -> str:
    """The server's refusal of a batch, naming the input lines at fault
    (`numbers`: the line of each event of the batch) and how many events
    were published before it."""
    problems = []
    for detail in error.details if isinstance(error.details, list) else []:
        index = detail.get("index") if isinstance(detail, dict) else None
        if isinstance(index, int) and 0 <= index < len(numbers):
            field = f" {detail['field']}" if detail.get("field") else ""
            problems.append(f"line {numbers[index]}{field}: {detail.get('message', '')}")
    said = f" ({'; '.join(problems[:3])}{'; ...' if len(problems) > 3 else ''})" if problems else ""
    return f"{error.message}{said}; {published} events published before"


def _open(path: str) -> IO[bytes]:
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _batches(stream: IO[bytes], size: int) -> Iterator[tuple[list[int], list[Any]]]:
    """Batches of decoded lines, each with the line number of each event."""
    numbers: list[int] = []
    batch: list[Any] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            decoded = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            raise MalformedInput(f"line {number} is not JSON: {exc}") from None
        try:  # decoding keeps the last value: the server would never see the first
            refuse_duplicate_keys(line, decoded)
        except MalformedInput as exc:
            raise MalformedInput(f"line {number}: {exc.message}", exc.details) from None
        numbers.append(number)
        batch.append(decoded)
        if len(batch) == size:
            yield numbers, batch
            numbers, batch = [], []
    if batch:
        yield numbers, batch


def _take(events: Iterator[Event], limit: int) -> Iterator[Event]:
    for count, event in enumerate(events, start=1):
        yield event
        if count >= limit:
            return


def _print_table(events: list[Event]) -> None:
    table = Table("occurred_at", "action", "actor", "targets", "outcome", "id")
    for e in events:
        actor = e.actor.name or e.actor.id if e.actor else ""
        targets = ", ".join(t.name or t.id for t in e.targets)
        # escape() and repr-like cleaning keep control characters off the terminal
        cells = [
            e.occurred_at.isoformat(timespec="seconds"),
            e.action,
            actor,
            targets,
            e.outcome,
            e.id,
        ]
        table.add_row(*(escape(_printable(c)) for c in cells))
    Console().print(table)
    if not events:
        typer.echo("no events", err=True)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)

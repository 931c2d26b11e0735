"""Every command's and group's `--help`, rendered as a user sees it at 80
columns. The command tree is walked, so a new command is checked too."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from auditlake.cli import app

WIDTH = 80
# A type tag such as `<str>`, `<bool>`, `<int>`, `<list[str]>`, `<path>`.
TYPE_TAG = re.compile(r"<[a-z][\w\[\]|,. ]*>")
BRACED = re.compile(r"\{[A-Za-z_]+\}")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = str.maketrans("", "", "│╭╮╰╯─")


def _tree(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, child in getattr(command, "commands", {}).items():
        found += _tree(child, (*path, name))
    return found


COMMANDS = _tree(typer.main.get_command(app))
NAMES = [" ".join(path) or "auditlake" for path, _ in COMMANDS]
SUBCOMMANDS = [c for c in COMMANDS if c[0]]


def render(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def summary(command: Any) -> str:
    return inspect.cleandoc(command.help or "").split("\n\n")[0]


def test_the_walk_finds_every_command() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "query", "rehydrate", "keys create", "poll cloudflare"} <= paths
    assert len(paths) >= 14


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=NAMES)
def test_help_reads_well(path: tuple[str, ...], command: Any) -> None:
    shown = render(path)
    lines = [line.translate(BOX).strip() for line in shown.splitlines()]
    # No `<str>` / `<bool>` type tags, on options, flags, --help or arguments.
    assert not TYPE_TAG.search(shown), TYPE_TAG.findall(shown)
    # The summary is one full sentence, shown whole on one line.
    first = summary(command)
    assert "\n" not in first, first
    assert first[0].isupper() and first.endswith("."), first
    assert first in lines, first
    # Every word of the help text is shown (rich markup such as `[retention]`
    # would silently eat words).
    words = set(" ".join(lines).split())
    assert set(inspect.cleandoc(command.help).split()) <= words
    # An example of the command itself, after a heading.
    assert "Examples:" in lines
    examples = lines[lines.index("Examples:") + 1 :]
    assert any(line.startswith(" ".join(("auditlake", *path))) for line in examples), examples
    # Arguments appear in the usage line by name (`KEY_ID`, `[FILE]`), never
    # in braces (`{KEY_ID}` reads as a literal or a set of choices).
    usage = next(line for line in lines if line.startswith("Usage:"))
    assert not BRACED.search(shown), BRACED.findall(shown)
    for param in command.params:
        if param.param_type_name == "argument":
            name = param.metavar or param.name.upper()
            assert re.search(rf"(^|[ \[]){name}(\]|\.\.\.)?( |$)", usage), usage
    # Every option and argument says what it is for.
    for param in command.params:
        assert (param.help or "").strip(), f"{param.name} has no help"


@pytest.mark.parametrize(("path", "command"), SUBCOMMANDS, ids=NAMES[1:])
def test_the_groups_list_shows_each_summary_on_one_line(
    path: tuple[str, ...], command: Any
) -> None:
    listing = render(path[:-1])
    rows = [line.translate(BOX).strip() for line in listing.splitlines()]
    row = next(r for r in rows if r.split(" ", 1)[0] == path[-1] and len(r.split()) > 1)
    assert row.split(None, 1)[1] == summary(command)

"""Names are checked whole, numbers as JSON means them, and no input byte
reaches a response header raw."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from auditlake.core.event import is_tenant
from auditlake.core.normalize import MAX_VERSION, Limits, Origin, normalize, parse_event
from auditlake.errors import InvalidInput, Unauthenticated
from auditlake.keys.base import check_tenant, split_key
from auditlake.web.export import attachment

SRC = Path(__file__).resolve().parents[2] / "src" / "auditlake"
NOW = datetime(2026, 11, 29, tzinfo=UTC)
ADMIN = Origin("acme", "key:k", "api", NOW, may_set_tenant=True)

GOOD_TENANTS = ["acme", "a", "123", "A.b_c:d-9", "x" * 128]
BAD_TENANTS = [
    "acme\n", "acme\r\n", "acme\x00", "acme ", " acme", "ac me", "\u0430cme", "\uff41cme",
    "acme\u2028", "\u0661\u0662", "-acme", ".acme", "a" * 129, "", "acme/x", "ac\u0301me",
]  # fmt: skip


@pytest.mark.parametrize("name", GOOD_TENANTS)
def test_valid_tenant_names_pass(name: str) -> None:
    assert is_tenant(name) and check_tenant(name) == name


@pytest.mark.parametrize("name", BAD_TENANTS, ids=repr)
def test_a_tenant_name_is_checked_whole(name: str) -> None:
    assert not is_tenant(name)
    with pytest.raises(InvalidInput):
        check_tenant(name)
    body = f'{{"action": "a", "tenant": {json.dumps(name)}}}'.encode()
    with pytest.raises(InvalidInput) as raised:
        normalize([parse_event(body, Limits())], ADMIN, Limits())
    assert [d["field"] for d in raised.value.details] == ["tenant"]


def test_an_api_key_is_checked_whole() -> None:
    key = "al_0123456789ab_" + "A" * 43
    assert split_key(key) == ("0123456789ab", "A" * 43)
    for bad in (key + "\n", key + "\x00", key + "A", "x" + key, key.replace("A", "\uff21")):
        with pytest.raises(Unauthenticated):
            split_key(bad)


def test_no_pattern_in_src_ends_with_a_dollar_that_lets_a_newline_through() -> None:
    """`$` matches before a trailing newline: a whole-string check uses
    `fullmatch` (or `\\Z`). Only MULTILINE patterns, which mean line ends, may end in `$`."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("compile", "match", "search", "fullmatch"):
                continue
            pattern = node.args[0] if node.args else None
            if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
                continue
            flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            flags += "".join(ast.unparse(k.value) for k in node.keywords)
            if re.search(r"(?<!\\)\$$", pattern.value) and "MULTILINE" not in flags:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize(
    "filename",
    ["auditlake-acme.csv", "auditlake-a:b.ndjson", "auditlake-acme\n.csv", 'x"; y=1\r\n.csv',
     "auditlake-\u0430cme.csv", "ünï 😀\\.csv", "x\x00y"],
)  # fmt: skip
def test_the_export_filename_header_carries_any_name_safely(filename: str) -> None:
    value = attachment(filename)
    assert all(0x20 <= ord(c) < 0x7F for c in value)  # visible ASCII only: no CR, LF, NUL
    fallback = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]*)"; filename\*=(.*)', value)
    assert fallback is not None, value
    assert len(fallback[1]) == len(filename)
    assert fallback[2].startswith("UTF-8''") and unquote(fallback[2][7:]) == filename


@pytest.mark.parametrize(
    ("version", "timestamp", "kept_version", "kept_ms"),
    [("3", "3000", 3, 3000), ("3.0", "3000.0", 3, 3000), ("1e1", "2.5e3", 10, 2500)],
)
def test_an_integer_field_takes_a_json_number_with_no_fraction(
    version: str, timestamp: str, kept_version: int, kept_ms: int
) -> None:
    body = f'{{"action": "a", "version": {version}, "timestamp": {timestamp}}}'.encode()
    stored = normalize([parse_event(body, Limits())], ADMIN, Limits())[0].event
    assert stored.version == kept_version and isinstance(stored.version, int)
    assert stored.occurred_at == datetime.fromtimestamp(kept_ms / 1000, UTC)


@pytest.mark.parametrize("version", ["1.5", "0", "-1", str(MAX_VERSION + 1), "1e300"])
def test_a_version_out_of_range_or_with_a_fraction_is_refused(version: str) -> None:
    body = f'{{"action": "a", "version": {version}}}'.encode()
    with pytest.raises(InvalidInput) as raised:
        normalize([parse_event(body, Limits())], ADMIN, Limits())
    assert {d["field"] for d in raised.value.details} == {"version"}

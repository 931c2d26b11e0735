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

from auditlake.core.event import TENANT_RULE, check_tenant, is_tenant, tenant_fault
from auditlake.core.normalize import MAX_VERSION, Limits, Origin, normalize, parse_event
from auditlake.errors import InvalidInput, MalformedInput, Unauthenticated
from auditlake.keys.base import split_key
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


@pytest.mark.parametrize("name", ["acme\n", "acme ", "\u0430cme", "-acme"], ids=repr)
def test_every_tenant_refusal_quotes_the_name_and_states_the_whole_rule(name: str) -> None:
    """The body, the query string, the CLI and the config all say the same:
    the name as repr (a trailing newline shows) and the rule with its first character."""
    fault = tenant_fault(name)
    assert fault is not None and repr(name) in fault and TENANT_RULE in fault
    assert "starting with a letter or digit" in TENANT_RULE
    for kind, status in ((InvalidInput, 422), (MalformedInput, 400)):
        with pytest.raises(kind) as raised:
            check_tenant(name, kind)
        assert raised.value.status == status and repr(name) in raised.value.message
    body = f'{{"action": "a", "tenant": {json.dumps(name)}}}'.encode()
    with pytest.raises(InvalidInput) as caught:
        normalize([parse_event(body, Limits())], ADMIN, Limits())
    assert caught.value.details == [{"field": "tenant", "message": fault}]


def test_only_core_event_holds_the_tenant_pattern() -> None:
    """One check: no other module matches TENANT_PATTERN itself."""
    users = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if "TENANT_PATTERN" in path.read_text(encoding="utf-8")
    ]
    assert users == ["core/event.py"]


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

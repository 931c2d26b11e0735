"""Duplicate JSON keys: the fast proof and the exact search agree with a
generator that knows where it put every repeated key."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlake.core.event import BatchInput, EventInput
from auditlake.core.strict_json import (
    DuplicateKey,
    _proved_distinct,
    duplicate_keys,
    has_duplicate_keys,
    presence_shape,
    refuse_duplicate_keys,
)
from auditlake.errors import MalformedInput


class Obj:
    """A JSON object written as its pairs, duplicates and all."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def write(value: Any, space: str, escape: bool = False) -> str:
    """JSON text of `value`; `space` goes around colons and commas, and with
    `escape` every colon in a string is written `\\u003a`."""
    if isinstance(value, Obj):
        members = [
            f"{string(k, escape)}{space}:{space}{write(v, space, escape)}" for k, v in value.pairs
        ]
        return "{" + f",{space}".join(members) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(write(v, space, escape) for v in value) + "]"
    return string(value, escape) if isinstance(value, str) else json.dumps(value)


def string(text: str, escape: bool) -> str:
    literal = json.dumps(text, ensure_ascii=False)
    return literal.replace(":", "\\u003a") if escape else literal


def expected(value: Any, path: str = "") -> list[DuplicateKey]:
    """Every repeated key in document order: the oracle."""
    found: list[DuplicateKey] = []
    if isinstance(value, Obj):
        seen: set[str] = set()
        for key, _ in value.pairs:
            where = f"{path}.{key}" if path else key
            if key in seen and DuplicateKey(key, where) not in found:
                found.append(DuplicateKey(key, where))
            seen.add(key)
        last = dict(value.pairs)  # the member a parser keeps is the last one
        for key, child in last.items():
            found += expected(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += expected(child, f"{path}[{index}]")
    return found


# Keys from a small alphabet repeat often; colons, quotes, backslashes and
# non-ASCII letters try the fast proof's counting.
KEYS = st.sampled_from(["a", "id", "type", ":", '"', "\\", "é", "", ":a", 'a":'])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(alphabet='ab:"\\é \n', max_size=5)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(Obj),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.sampled_from(["", " ", "\n  "]), st.booleans())
def test_finds_exactly_the_repeated_keys(value: Any, space: str, escape: bool) -> None:
    document = write(value, space, escape).encode()
    want = expected(value)[:10]
    assert duplicate_keys(document) == want
    assert duplicate_keys(document, msgspec.json.decode(document)) == want
    assert has_duplicate_keys(document) == bool(want)


def members(*fields: tuple[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Obj]:
    """Objects of these fields, some left out, some given twice, in any order."""
    pair = st.one_of(*(st.tuples(st.just(name), value) for name, value in fields))
    return st.lists(pair, max_size=6).map(Obj)


TEXT = st.one_of(st.none(), st.text(alphabet='ab:"\\é', max_size=4))
ACTOR = members(("id", TEXT), ("type", TEXT), ("name", TEXT), ("metadata", VALUES))
EVENT = members(
    ("action", TEXT),
    ("id", TEXT),
    ("version", st.one_of(st.integers(0, 3), st.just(3.0))),
    ("actor", st.one_of(st.none(), ACTOR)),
    ("targets", st.lists(ACTOR, max_size=2)),
    ("context", members(("ip", TEXT), ("location", TEXT))),
    ("metadata", VALUES),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENT, max_size=3), st.sampled_from(["", " "]))
def test_the_presence_shape_proves_exactly_when_no_key_repeats(
    events: list[Obj], space: str
) -> None:
    """Explicit nulls and defaults, left-out fields and repeated ones: the
    proof over the shape of BatchInput holds exactly when no key repeats."""
    document = write(Obj([("events", events)]), space).encode()
    want = expected(Obj([("events", events)]))[:10]
    assert _proved_distinct(document, None, BatchInput) == (not want)
    assert duplicate_keys(document, shape=BatchInput) == want


def test_a_presence_shape_mirrors_fields_and_leaves_out_the_absent() -> None:
    shape = presence_shape(EventInput)
    assert [f.name for f in msgspec.structs.fields(shape)] == [
        f.name for f in msgspec.structs.fields(EventInput)
    ]
    decoded = msgspec.json.decode(b'{"action": "a", "actor": {"id": null}}', type=shape)
    assert msgspec.json.encode(decoded) == b'{"action":"a","actor":{"id":null}}'
    # a body of another shape falls back to the plain decode, still exact
    assert duplicate_keys(b'{"events": 1, "events": 2}', shape=BatchInput) == [
        DuplicateKey("events", "events")
    ]


@pytest.mark.parametrize(
    ("document", "found"),
    [
        (b'{"action": "a", "action": "b"}', [DuplicateKey("action", "action")]),
        (b'{"actor": {"id": "1", "id": "2"}}', [DuplicateKey("id", "actor.id")]),
        (
            b'{"events": [{"id": "x"}, {"metadata": {"k": 1, "k": 1}}]}',
            [DuplicateKey("k", "events[1].metadata.k")],
        ),
        (b'{"a": 1, "\\u0061": 2}', [DuplicateKey("a", "a")]),  # equal once decoded
        (b'{"a" : 1, "a": 2}', [DuplicateKey("a", "a")]),
        (b'{"a": ":", "a": 1}', [DuplicateKey("a", "a")]),
        (b'{"a": 1, "a": "\\u003a"}', [DuplicateKey("a", "a")]),  # dropped one colon, added one
        ('{"a": 1, "a": "\\u003a"}'.encode("utf-16"), [DuplicateKey("a", "a")]),  # a vendor's
        (b'{"a": 1, "a": 2, "b": 1, "b": 2}', [DuplicateKey("a", "a"), DuplicateKey("b", "b")]),
        (b'{"action": "a", "Action": "b", "actor": {"id": "1"}, "targets": [{"id": "2"}]}', []),
        (b'[{"a": 1}, {"a": 1}]', []),  # the same key in two objects is fine
        (b'"text"', []),
    ],
)
def test_instances(document: bytes, found: list[DuplicateKey]) -> None:
    assert duplicate_keys(document) == found


def test_reports_at_most_the_limit() -> None:
    document = json.dumps([{"k": 1}] * 30).replace('{"k": 1}', '{"k": 1, "k": 2}').encode()
    found = duplicate_keys(document, limit=3)
    assert found == [DuplicateKey("k", f"[{i}].k") for i in range(3)]


def test_refusal_names_the_key_and_its_path() -> None:
    with pytest.raises(MalformedInput) as caught:
        refuse_duplicate_keys(b'{"data": {"x": 1, "x": 2}}', where="[3]")
    assert caught.value.status == 400
    assert "'x'" in caught.value.message
    assert caught.value.details == [{"field": "[3].data.x", "message": "duplicate key 'x'"}]
    refuse_duplicate_keys(b'{"data": {"x": 1, "y": 2}}')  # distinct keys pass


def test_nesting_too_deep_for_the_exact_search_is_malformed() -> None:
    document = b'{"a": ' * 5000 + b'"\\n"' + b"}" * 5000
    with pytest.raises(MalformedInput, match="nested too deeply"):
        refuse_duplicate_keys(document)

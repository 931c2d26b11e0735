"""Duplicate keys in JSON objects: finding them, cheaply.

RFC 8259 (section 4) leaves an object whose names repeat to each parser:
most keep the last value and drop the others without a trace. An audit record
must not be ambiguous, so every JSON input is checked here and refused when
one object names a key twice (at any depth).

msgspec, which decodes our inputs, cannot see duplicates. The check has two
stages so that the usual body costs one extra C-speed decode, an encode and
two counts:

1. A proof that there are none: outside strings every member has exactly one
   colon. In a body without a `\\u` escape, the strings msgspec decodes hold
   the same colons as the text, and so does its encoding of the decoded value.
   Each member that a parser dropped for a later one with the same key takes
   at least its own colon with it, so the body has more colons than the
   re-encoding; equal counts prove that no key repeats. The decoded value must
   keep every member the text named (its last value): a plain decode does, and
   so does a decode into the `presence_shape` of the Struct the body decoded
   as, which is cheaper (no dict per object) and omits exactly the absent
   fields when encoded.
2. Otherwise the exact search: the standard library's decoder with an
   `object_pairs_hook`, which sees every member of every object.

Pure: bytes in, findings out.
"""

from __future__ import annotations

import json
import types
import typing
from functools import cache
from typing import Any

import msgspec

from auditlake.errors import MalformedInput

_encode = msgspec.json.Encoder().encode
MAX_REPORTED = 10


class DuplicateKey(msgspec.Struct, frozen=True):
    """A key given twice in one object: `path` names the member the way our
    error details name fields (`actor.id`, `events[2].action`, `[0].data.x`)."""

    key: str
    path: str


class _Ambiguous(dict[str, Any]):
    """An object whose pairs named `repeated` more than once (exact search only)."""

    repeated: list[str]


def duplicate_keys(
    document: bytes,
    decoded: Any = None,
    *,
    shape: type[msgspec.Struct] | None = None,
    limit: int = MAX_REPORTED,
) -> list[DuplicateKey]:
    """Up to `limit` keys that repeat within one object of `document`, in
    document order; empty when every object's keys are distinct.

    `document` must be valid UTF-8 JSON (check it first, e.g. with msgspec);
    `decoded` is the document as msgspec decoded it without a type, when the
    caller already has it (saves a decode); `shape` the Struct type the
    document is known to decode as (a cheaper proof). Raises RecursionError
    for nesting too deep for the standard library's decoder, ValueError for
    what it cannot read (e.g. an integer of more than 4,300 digits)."""
    if _proved_distinct(document, decoded, shape):
        return []
    return _exact_search(document, limit)


def has_duplicate_keys(document: bytes, decoded: Any = None) -> bool:
    """Whether some object of `document` names a key twice (see `duplicate_keys`)."""
    return bool(duplicate_keys(document, decoded, limit=1))


def _proved_distinct(document: bytes, decoded: Any, shape: type[msgspec.Struct] | None) -> bool:
    """Stage 1 (see the module's docstring): True only when no key can repeat."""
    # `\\u003a` is a colon once decoded; NUL bytes mean UTF-16 or UTF-32 (the
    # standard library reads those), where a colon is not one byte.
    # (A one-byte search first: most bodies have no backslash at all.)
    if (b"\\" in document and b"\\u" in document) or b"\0" in document:
        return False
    if decoded is None and shape is not None:
        try:
            decoded = _presence_decoder(shape).decode(document)
        except msgspec.ValidationError:
            decoded = None  # not of that shape after all: the plain decode tells
    if decoded is None:
        decoded = msgspec.json.decode(document)
    return document.count(b":") == _encode(decoded).count(b":")


@cache
def presence_shape(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A mirror of the Struct type `struct` for the proof: the same fields
    (and nested Structs, mirrored too), each of any JSON value and UNSET when
    absent, so that encoding a decoded value writes exactly the members the
    text named, no default filled in. Fields keep their names on the wire.
    A field of another kind (a dict of Structs, a union of several) is
    decoded as plain JSON, which keeps the proof exact; a tagged or
    `array_like` Struct never fits its mirror, so its documents always get
    the exact search."""
    fields = [
        (f.name, _presence_type(f.type), msgspec.UNSET) for f in msgspec.structs.fields(struct)
    ]
    rename = {f.name: f.encode_name for f in msgspec.structs.fields(struct)}
    return msgspec.defstruct(f"{struct.__name__}Presence", fields, rename=rename, gc=False)


@cache
def _presence_decoder(struct: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(presence_shape(struct))


def _presence_type(annotation: Any) -> Any:
    """A field's type in a presence shape: Structs (alone, in a list, or with
    None) are mirrored; every other value is decoded as it comes (Any)."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return presence_shape(annotation)
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        return list[_presence_type(arguments[0])]  # type: ignore[misc]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [a for a in arguments if a is not type(None)]
        mirrored = _presence_type(others[0]) if len(others) == 1 else Any
        return Any if mirrored is Any else mirrored | None
    return Any


def _exact_search(document: bytes, limit: int) -> list[DuplicateKey]:
    found = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        found = True
        ambiguous = _Ambiguous(obj)
        ambiguous.repeated = _repeated(pairs)
        return ambiguous

    value = json.loads(document, object_pairs_hook=pairs_hook)
    return _collect(value, limit) if found else []


def _repeated(pairs: list[tuple[str, Any]]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for key, _ in pairs:
        if key in seen:
            repeated.append(key)
        seen.add(key)
    return repeated


def _collect(value: Any, limit: int) -> list[DuplicateKey]:
    """The repeated keys of the decoded value's ambiguous objects, in document order."""
    found: list[DuplicateKey] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack and len(found) < limit:
        node, path = stack.pop()
        if isinstance(node, dict):
            if isinstance(node, _Ambiguous):
                reported = set()
                for key in node.repeated:
                    if key not in reported:
                        reported.add(key)
                        found.append(DuplicateKey(key, _join(path, key)))
            children = [(child, _join(path, key)) for key, child in node.items()]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(child, f"{path}[{i}]") for i, child in enumerate(node)]))
    return found[:limit]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def refuse_duplicate_keys(
    document: bytes,
    decoded: Any = None,
    *,
    shape: type[msgspec.Struct] | None = None,
    where: str = "",
) -> None:
    """Raise MalformedInput (400) naming each repeated key and its path (under
    the prefix `where`, e.g. `[3]`) when some object of `document` names a key
    twice; see `duplicate_keys` for the arguments."""
    try:
        found = duplicate_keys(document, decoded, shape=shape)
    except RecursionError:
        raise MalformedInput("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise MalformedInput(f"the body is not valid JSON: {exc}") from None
    if not found:
        return
    first = found[0]
    prefix = f"{where}." if where else ""
    raise MalformedInput(
        f"the JSON names the key {first.key!r} twice in one object (at {prefix}{first.path}):"
        " an audit record must not be ambiguous",
        [{"field": prefix + d.path, "message": f"duplicate key {d.key!r}"} for d in found],
    )

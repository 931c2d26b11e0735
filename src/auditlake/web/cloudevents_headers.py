"""Binary-mode `ce-*` header values -> CloudEvent attribute values, as the
CloudEvents HTTP protocol binding 1.0.2 (section 3.1.3.2) decodes them.

1. Unescape double-quoted strings (RFC 7230 section 3.2.6): older senders
   quote values instead of percent-encoding their spaces and quotes, so
   `"orders/42 \\"draft\\""` is `orders/42 "draft"`. Text outside quotes stays.
2. One round of percent-decoding, of UTF-8: `%xy` in either case; a `%` not
   followed by two hex digits is refused, and so is a byte sequence that is
   not UTF-8 (overlong forms such as `%C0%A0` included).
3. Refuse control characters (U+0000-U+001F, U+007F-U+009F), which no
   attribute value may hold.

`ce-datacontenttype` is refused whatever its value: in binary mode the
data's type is the Content-Type header (HTTP binding 3.1.1).

Raw octets beyond ASCII (which the binding says a sender must not put in a
header) are read as UTF-8 too, and refused when they are not. Every refusal is
a 400 naming the header. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from auditlake.errors import MalformedInput

PREFIX = "ce-"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def ce_attributes(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The attributes of the `ce-*` headers among `headers` (lower-case names,
    values as the server read them: latin-1), by attribute name (the header
    name without `ce-`). A header given twice is refused: which one counts
    would be a guess; so is `ce-datacontenttype` (binary mode carries the
    data's type in Content-Type, HTTP binding 3.1.1)."""
    attributes: dict[str, str] = {}
    for name, value in headers:
        if not name.startswith(PREFIX):
            continue
        attribute = name[len(PREFIX) :]
        if attribute == "datacontenttype":
            # HTTP binding 3.1.1: in binary mode Content-Type carries it; a
            # ce- header beside it could disagree with how the data is read.
            raise _refused(name, "in binary mode the data's type is the Content-Type header")
        if attribute in attributes:
            raise _refused(name, "the header is given more than once")
        attributes[attribute] = decode_header_value(name, value)
    return attributes


def decode_header_value(name: str, value: str) -> str:
    """The attribute value of header `name`'s `value` (see the module's
    docstring); MalformedInput (400) naming the header if it must be refused."""
    text = _unquote(name, value.strip(" \t"))
    bad = _BAD_PERCENT.search(text)
    if bad:
        raise _refused(name, f"'%' at character {bad.start()} is not followed by two hex digits")
    try:
        octets = text.encode("latin-1")
    except UnicodeEncodeError:  # a server that read the header otherwise than latin-1
        octets = text.encode("utf-8")
    try:
        decoded = unquote_to_bytes(octets).decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"the value is not UTF-8 once percent-decoded (decoded byte {exc.start})"
        raise _refused(name, reason) from None
    control = _CONTROL.search(decoded)
    if control:
        code = f"U+{ord(control.group()):04X}"
        raise _refused(name, f"the value holds the control character {code}")
    return decoded


def _unquote(name: str, value: str) -> str:
    """`value` with each double-quoted string replaced by its content, its
    quoted pairs (backslash + character) unescaped."""
    if '"' not in value:
        return value
    out: list[str] = []
    quoted = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == '"':
            quoted = not quoted
        elif quoted and char == "\\":
            index += 1
            if index == len(value):
                break  # unterminated: refused below
            out.append(value[index])
        else:
            out.append(char)
        index += 1
    if quoted:
        raise _refused(name, "a double-quoted string is not closed")
    return "".join(out)


def _refused(name: str, reason: str) -> MalformedInput:
    return MalformedInput(
        f"the header {name} is not a valid CloudEvents attribute value: {reason}",
        [{"field": name, "message": reason}],
    )

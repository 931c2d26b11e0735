"""Binary-mode header values decoded as the CloudEvents HTTP binding 1.0.2
(section 3.1.3.2) says: quoted strings, percent-decoding of UTF-8, refusals."""

from __future__ import annotations

import pytest
from cloudevents.core.bindings.http import _encode_header_value
from hypothesis import given
from hypothesis import strategies as st

from auditlake.errors import MalformedInput
from auditlake.web.cloudevents_headers import ce_attributes, decode_header_value


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ('"orders/42 \\"draft\\""', 'orders/42 "draft"'),  # an older sender's quoted string
        ('"a b"', "a b"),
        ('"back\\\\slash"', "back\\slash"),
        ('""', ""),
        ('prefix "quoted part" suffix', "prefix quoted part suffix"),
        ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"),  # the binding's own example
        ("caf%c3%a9", "café"),  # lower-case hex is accepted
        ("%41%42C", "ABC"),  # needlessly encoded is accepted
        ("100%25", "100%"),
        ("%2541", "%41"),  # one round of decoding only
        ('"%22quoted%22 and %20"', '"quoted" and  '),  # unquoted first, then decoded
        ("/mycontext/subcontext", "/mycontext/subcontext"),
        ("back\\slash", "back\\slash"),  # a backslash outside quotes is a character
        ("  padded\t", "padded"),  # optional whitespace around the value
        ("caf\u00c3\u00a9", "café"),  # raw UTF-8 octets, as a server reads them (latin-1)
    ],
)
def test_decodes(value: str, decoded: str) -> None:
    assert decode_header_value("ce-subject", value) == decoded


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("50%", "not followed by two hex digits"),
        ("%zz", "not followed by two hex digits"),
        ("%4", "not followed by two hex digits"),
        ("%C0%A0", "not UTF-8"),  # overlong U+0020: the binding's example of a refusal
        ("%FF", "not UTF-8"),
        ("%ED%A0%80", "not UTF-8"),  # a UTF-16 surrogate
        ("%E2%82", "not UTF-8"),  # cut short
        ("caf\u00e9", "not UTF-8"),  # a raw latin-1 octet
        ('"unterminated', "not closed"),
        ('"ends with a backslash\\', "not closed"),
        ("a%0Ab", r"control character U\+000A"),
        ("%00", r"control character U\+0000"),
        ("%C2%85", r"control character U\+0085"),
    ],
)
def test_refuses_naming_the_header(value: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason) as caught:
        decode_header_value("ce-subject", value)
    assert caught.value.status == 400
    assert caught.value.details[0]["field"] == "ce-subject"
    assert "ce-subject" in caught.value.message


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x1FFFF)))
def test_what_the_sdk_encodes_decodes_back(text: str) -> None:
    assert decode_header_value("ce-x", _encode_header_value(text)) == text


def test_attributes_come_from_ce_headers_only_once_each() -> None:
    headers = [("content-type", "text/plain"), ("ce-id", '"a 1"'), ("ce-type", "t%2Ex")]
    assert ce_attributes(headers) == {"id": "a 1", "type": "t.x"}
    with pytest.raises(MalformedInput, match="more than once") as caught:
        ce_attributes([("ce-subject", "a"), ("ce-subject", "b")])
    assert caught.value.details == [
        {"field": "ce-subject", "message": "the header is given more than once"}
    ]

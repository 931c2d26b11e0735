from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditlake.core.query import (
    MAX_Q_CHARS,
    MAX_Q_WORDS,
    Position,
    decode_cursor,
    encode_cursor,
    parse_query,
    single_values,
)
from auditlake.errors import InvalidInput, MalformedInput

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def test_filters_are_parsed_and_trimmed() -> None:
    q = parse_query("acme", {"action": " user.* ", "outcome": "failure", "limit": "10"})
    assert q.filters.action is None and q.filters.action_prefix == "user."
    assert q.filters.outcome == "failure" and q.limit == 10 and q.order == "desc"
    exact = parse_query("acme", {"action": "user.signed_in", "order": "asc"})
    assert exact.filters.action == "user.signed_in" and exact.order == "asc"


def test_times_accept_rfc3339() -> None:
    q = parse_query("acme", {"since": "1970-01-01T00:00:01Z", "until": "1970-01-01T02:00:02+02:00"})
    assert (q.filters.since_us, q.filters.until_us) == (1_000_000, 2_000_000)
    # since/until forms, relative times and their cursors: tests/unit/test_times.py


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"outcome": "maybe"}, "outcome"),
        ({"colour": "red"}, "colour"),
        ({"cursor": "!!!"}, "cursor"),
        ({"format": "csv"}, "format"),  # an export's parameter, not a search's
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"q": "x" * (MAX_Q_CHARS + 1)}, "q"),
    ],
)
def test_every_bad_parameter_is_one_400_naming_it(params: dict[str, str], field: str) -> None:
    """One kind of fault, one status: a malformed or unacceptable query parameter."""
    with pytest.raises(MalformedInput) as exc:
        parse_query("acme", params, now=NOW)
    assert exc.value.status == 400 and not isinstance(exc.value, InvalidInput)
    assert exc.value.details[0]["field"] == field
    assert field in exc.value.message


@pytest.mark.parametrize(
    "name", ["since", "until", "limit", "order", "cursor", "action", "outcome", "q", "tenant"]
)
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_value_is_refused_not_taken_as_absent(name: str, value: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        parse_query("acme", {name: value}, now=NOW)
    assert exc.value.details == [{"field": name, "message": exc.value.details[0]["message"]}]
    assert name in exc.value.message and "empty" in exc.value.message
    if name in ("since", "until"):  # with the forms it does accept
        assert "RFC 3339" in exc.value.message and "15m" in exc.value.message
    with pytest.raises(MalformedInput):
        single_values([(name, value)])


@pytest.mark.parametrize(
    "pairs",
    [
        [("since", "1s"), ("since", "1000d")],
        [("format", "ndjson"), ("format", "csv")],
        [("action", "a"), ("limit", "5"), ("action", "a")],  # even the same value
        [("tenant", "acme"), ("tenant", "other")],
    ],
)
def test_a_repeated_parameter_is_refused_naming_it(pairs: list[tuple[str, str]]) -> None:
    name = pairs[0][0]
    with pytest.raises(MalformedInput) as exc:
        single_values(pairs)
    assert exc.value.details == [{"field": name, "message": "given more than once"}]
    assert name in exc.value.message
    assert single_values([("since", "1s"), ("until", "1h")]) == {"since": "1s", "until": "1h"}


def test_cursor_round_trips_and_is_bound_to_its_query() -> None:
    q = parse_query("acme", {"action": "user.*"})
    cursor = encode_cursor(q, Position(123, 7))
    assert decode_cursor(cursor, q) == Position(123, 7)
    resumed = parse_query("acme", {"action": "user.*", "cursor": cursor})
    assert resumed.after == Position(123, 7)
    with pytest.raises(MalformedInput, match="other filters"):
        parse_query("acme", {"action": "monitor.*", "cursor": cursor})
    with pytest.raises(MalformedInput, match="other filters"):
        parse_query("other-tenant", {"action": "user.*", "cursor": cursor})


def test_q_is_kept_as_given_within_the_caps() -> None:
    words = " ".join(f"w{n}" for n in range(MAX_Q_WORDS))
    assert parse_query("acme", {"q": f"  {words}  "}).filters.q == words
    assert parse_query("acme", {"q": "x" * MAX_Q_CHARS}).filters.q == "x" * MAX_Q_CHARS
    # Punctuation is not a word: many separators within the length are fine.
    assert parse_query("acme", {"q": "a - b ... c"}).filters.q == "a - b ... c"


@pytest.mark.parametrize(
    ("q", "cap"),
    [
        (" ".join(["w"] * (MAX_Q_WORDS + 1)), f"at most {MAX_Q_WORDS} words"),
        (".".join(f"w{n}" for n in range(500)), "characters"),
        ("x" * (MAX_Q_CHARS + 1), f"at most {MAX_Q_CHARS} characters"),
        # Words are counted folded: a ligature is one word, `_` splits.
        ("_".join(["ab"] * (MAX_Q_WORDS + 1)), "words"),
    ],
)
def test_q_beyond_a_cap_is_a_400_naming_it(q: str, cap: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        parse_query("acme", {"q": q})
    assert exc.value.status == 400
    assert cap in exc.value.message
    assert exc.value.details == [{"field": "q", "message": exc.value.details[0]["message"]}]
    assert cap.rsplit(maxsplit=1)[-1] in exc.value.details[0]["message"]

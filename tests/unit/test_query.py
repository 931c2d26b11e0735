from __future__ import annotations

import pytest

from auditlake.core.query import Position, decode_cursor, encode_cursor, parse_query
from auditlake.errors import InvalidInput


def test_filters_are_parsed_and_trimmed() -> None:
    q = parse_query("acme", {"action": " user.* ", "outcome": "failure", "limit": "10"})
    assert q.filters.action is None and q.filters.action_prefix == "user."
    assert q.filters.outcome == "failure" and q.limit == 10 and q.order == "desc"
    exact = parse_query("acme", {"action": "user.signed_in", "order": "asc"})
    assert exact.filters.action == "user.signed_in" and exact.order == "asc"


def test_times_accept_rfc3339_and_treat_naive_as_utc() -> None:
    q = parse_query("acme", {"since": "1970-01-01T00:00:01Z", "until": "1970-01-01T00:00:02"})
    assert (q.filters.since_us, q.filters.until_us) == (1_000_000, 2_000_000)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "yesterday"}, "since"),
        ({"colour": "red"}, "colour"),
        ({"cursor": "!!!"}, "cursor"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_query("acme", params)
    assert exc.value.details[0]["field"] == field


def test_cursor_round_trips_and_is_bound_to_its_query() -> None:
    q = parse_query("acme", {"action": "user.*"})
    cursor = encode_cursor(q, Position(123, 7))
    assert decode_cursor(cursor, q) == Position(123, 7)
    resumed = parse_query("acme", {"action": "user.*", "cursor": cursor})
    assert resumed.after == Position(123, 7)
    with pytest.raises(InvalidInput, match="other filters"):
        parse_query("acme", {"action": "monitor.*", "cursor": cursor})
    with pytest.raises(InvalidInput, match="other filters"):
        parse_query("other-tenant", {"action": "user.*", "cursor": cursor})

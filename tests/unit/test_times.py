"""Every timestamp input against the same RFC 3339 edge cases, and the search
bounds' short forms (a date, a duration before now) with their cursors.

One table of cases runs through each input: the parser itself, an event's
`occurred_at`, a CloudEvent's `time` (structured and binary mode), a
Cloudflare item's `when`, and a search's `since` (API and CLI flags share
`parse_query` / `parse_time`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from auditlake.core.cloudevents import map_cloudevent
from auditlake.core.normalize import Limits, Origin, normalize, parse_event
from auditlake.core.query import Position, encode_cursor, parse_query, parse_time
from auditlake.core.times import (
    ACCEPTED_FORMS,
    TimeFormatError,
    format_rfc3339,
    parse_date,
    parse_duration,
    parse_moment,
    parse_rfc3339,
)
from auditlake.errors import AuditlakeError, InvalidInput, MalformedInput
from auditlake.pollers.base import InvalidItem
from auditlake.pollers.cloudflare_mapping import map_v1
from auditlake.web.cloudevents_http import read_events


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        micro: int = 0) -> datetime:  # fmt: skip
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


LEAP = utc(2016, 12, 31, 23, 59, 59, 999_999)
# (text, the UTC moment it means)
ACCEPTED = [
    ("2016-12-31T23:59:60Z", LEAP),  # a leap second: the last microsecond of its minute
    ("2016-12-31T23:59:60.5Z", LEAP),  # its fraction cannot count past that
    ("2017-01-01T05:29:60+05:30", LEAP),  # the same leap second in India
    ("2016-12-31T18:59:60-05:00", LEAP),
    ("2026-03-15T12:30:60Z", utc(2026, 3, 15, 12, 30, 59, 999_999)),  # any date (5.7)
    ("2016-12-31t23:59:59z", utc(2016, 12, 31, 23, 59, 59)),  # lower case t and z (5.6)
    ("2016-12-31 23:59:59Z", utc(2016, 12, 31, 23, 59, 59)),  # a space for T (5.6 NOTE)
    ("2016-12-31T23:59:59+00:00", utc(2016, 12, 31, 23, 59, 59)),
    ("2016-12-31T23:59:59-00:00", utc(2016, 12, 31, 23, 59, 59)),  # UTC, local offset unknown
    ("2026-11-01T10:00:00+05:30", utc(2026, 11, 1, 4, 30)),
    ("2026-11-01T01:00:00+14:00", utc(2026, 10, 31, 11)),  # back over a month's end
    ("2026-12-31T20:00:00-08:00", utc(2027, 1, 1, 4)),  # on into the next year
    ("2026-11-01T10:00:00.1Z", utc(2026, 11, 1, 10, 0, 0, 100_000)),
    ("2026-11-01T10:00:00.12Z", utc(2026, 11, 1, 10, 0, 0, 120_000)),
    ("2026-11-01T10:00:00.123456Z", utc(2026, 11, 1, 10, 0, 0, 123_456)),
    # Beyond microseconds the fraction is cut, never rounded into the next second.
    ("2026-11-01T10:00:00.1234569Z", utc(2026, 11, 1, 10, 0, 0, 123_456)),
    ("2016-12-31T23:59:59.999999999Z", utc(2016, 12, 31, 23, 59, 59, 999_999)),
    ("2016-02-29T00:00:00Z", utc(2016, 2, 29)),  # a leap day
    ("9999-12-31T23:59:59Z", utc(9999, 12, 31, 23, 59, 59)),
    ("1970-01-01T00:00:00Z", utc(1970, 1, 1)),
]
# (text, words the refusal names)
REFUSED = [
    # 60 is a leap second, so the message must not say "0..59".
    ("2016-12-31T23:59:61Z", "second must be 0..60, 60 only for a leap second"),
    ("2016-12-31T23:59:99Z", "second must be 0..60, 60 only for a leap second"),
    ("2016-12-31T24:00:00Z", "hour"),
    ("2016-12-31T23:60:00Z", "minute"),
    ("2016-02-30T00:00:00Z", "day is out of range"),
    ("2015-02-29T00:00:00Z", "day is out of range"),  # not a leap year
    ("2016-13-01T00:00:00Z", "month"),
    ("0000-01-01T00:00:00Z", "year"),
    ("9999-12-31T23:00:00-05:00", "0001-9999"),  # past year 9999 once in UTC
    ("0001-01-01T00:00:00+01:00", "0001-9999"),  # before year 1 once in UTC
    ("2016-12-31T23:59:59+24:00", "offset"),
    ("2016-12-31T23:59:59+05:60", "offset"),
    ("٢٠١٦-12-31T23:59:59Z", "RFC 3339"),  # Arabic-Indic digits: int() would read them
    ("\uff12\uff10\uff11\uff16-12-31T23:59:59Z", "RFC 3339"),  # full-width digits
    ("२०१६-12-31T23:59:59Z", "RFC 3339"),  # Devanagari digits
    ("2016-12-31T23:59:59+0530", "RFC 3339"),  # ISO 8601 basic offset
    ("20161231T235959Z", "RFC 3339"),  # ISO 8601 basic format
    ("2016-12-31T23:59Z", "RFC 3339"),  # no seconds
    ("2016-12-31T23:59:59.Z", "RFC 3339"),  # an empty fraction
    ("2016-12-31T23:59:59ZZ", "RFC 3339"),
    ("2016-W52-6T23:59:59Z", "RFC 3339"),  # ISO week date
    ("2016-12-31T23:59:59.123456789012345678901234567890123456789012345Z", "RFC 3339"),
    ("x", "RFC 3339"),
]


def via_parser(text: str) -> datetime:
    return parse_rfc3339(text)


def via_event(text: str) -> datetime:
    """An event's occurred_at, through the API's parse and normalize."""
    origin = Origin("acme", "key:k", "api", utc(2026, 1, 1))
    body = json.dumps({"action": "a", "occurred_at": text}).encode()
    return normalize([parse_event(body, Limits())], origin, Limits())[0].event.occurred_at


def via_cloudevent(text: str) -> datetime:
    """A structured-mode CloudEvent's time, through the mapping to an event."""
    body = json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": text})
    (event,) = read_events({"content-type": "application/cloudevents+json"}, body.encode(), 10)
    return _normalized(event)


def via_binary_cloudevent(text: str) -> datetime:
    """A binary-mode CloudEvent's ce-time header."""
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"}
    (event,) = read_events({**headers, "ce-time": text}, b"", 10)
    return _normalized(event)


def _normalized(event: object) -> datetime:
    item, provenance = map_cloudevent(event)  # type: ignore[arg-type]
    origin = Origin("acme", "key:k", "cloudevents:s", utc(2026, 1, 1))
    return normalize([item], origin, Limits(), [provenance])[0].event.occurred_at


def via_cloudflare(text: str) -> datetime:
    """A Cloudflare v1 item's `when`, through the mapping and normalize."""
    mapped = map_v1({"id": "cf-1", "action": {"type": "login"}, "when": text}, "acct")
    origin = Origin("acct", "poller:cf", "cloudflare:acct", utc(2026, 1, 1))
    event = normalize([mapped.item], origin, Limits(), [mapped.provenance])[0].event
    assert event.occurred_at == mapped.occurred_at
    return event.occurred_at


def via_since(text: str) -> datetime:
    """A search's since (query string and CLI flags alike)."""
    since_us = parse_query("acme", {"since": text}, now=utc(2026, 1, 1)).filters.since_us
    assert since_us is not None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=since_us)


INPUTS: dict[str, Callable[[str], datetime]] = {
    "parser": via_parser,
    "occurred_at": via_event,
    "cloudevent-time": via_cloudevent,
    "ce-time-header": via_binary_cloudevent,
    "cloudflare-when": via_cloudflare,
    "since": via_since,
}
# Each input's refusal: its error type, and the field it names.
REFUSALS: dict[str, tuple[type[Exception], str | None]] = {
    "parser": (TimeFormatError, None),
    "occurred_at": (InvalidInput, "occurred_at"),
    "cloudevent-time": (InvalidInput, "time"),
    "ce-time-header": (MalformedInput, "ce-time"),  # a header fault, like every ce-* one
    "cloudflare-when": (InvalidItem, "when"),
    "since": (MalformedInput, "since"),
}
# Before 1970 is valid RFC 3339 but not a valid event time.
EVENT_INPUTS = ("occurred_at", "cloudevent-time", "ce-time-header", "cloudflare-when")


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize(("text", "moment"), ACCEPTED, ids=[t for t, _ in ACCEPTED])
def test_every_input_reads_the_same_moment(kind: str, text: str, moment: datetime) -> None:
    got = INPUTS[kind](text)
    assert got == moment
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize(("text", "reason"), REFUSED, ids=[t[:40] for t, _ in REFUSED])
def test_every_input_refuses_the_same_texts(kind: str, text: str, reason: str) -> None:
    assert_refused(kind, text, reason)


@pytest.mark.parametrize("kind", INPUTS)
def test_a_time_without_offset_is_refused_but_cloudflares_is_utc(kind: str) -> None:
    naive = "2016-12-31T23:59:59"  # the sender's local time, or UTC? An audit log won't guess.
    if kind == "cloudflare-when":  # Cloudflare's API documents its times as UTC
        assert via_cloudflare(naive) == utc(2016, 12, 31, 23, 59, 59)
    else:
        assert_refused(kind, naive, "offset")


@pytest.mark.parametrize("kind", INPUTS)
def test_surrounding_whitespace_is_trimmed_only_where_every_value_is(kind: str) -> None:
    text = " 2016-12-31T23:59:60Z "
    # Every search parameter and Cloudflare field is trimmed; HTTP trims header values.
    if kind in ("since", "cloudflare-when", "ce-time-header"):
        assert INPUTS[kind](text) == LEAP
    else:
        assert_refused(kind, text, "RFC 3339")


def assert_refused(kind: str, text: str, reason: str) -> None:
    error, field = REFUSALS[kind]
    with pytest.raises(error) as caught:
        INPUTS[kind](text)
    details = _details(caught.value)
    assert reason in str(caught.value) or reason in json.dumps(details, ensure_ascii=False)
    if field is not None:
        assert field in {p["field"] for p in details}


def _details(exc: BaseException) -> list[dict[str, str]]:
    if isinstance(exc, TimeFormatError):
        return []
    assert isinstance(exc, AuditlakeError)
    return [exc.details] if isinstance(exc.details, dict) else list(exc.details or [])


@pytest.mark.parametrize("kind", EVENT_INPUTS)
@pytest.mark.parametrize("text", ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_event_times_before_1970_are_refused(kind: str, text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid") as caught:
        INPUTS[kind](text)
    assert any("1970" in p["message"] for p in caught.value.details)


def test_a_leap_second_sorts_after_its_minute_and_before_the_next() -> None:
    before, leap, after = (
        parse_rfc3339(t)
        for t in ("2016-12-31T23:59:59.999998Z", "2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z")
    )
    assert before < leap < after


@pytest.mark.parametrize(
    "moment",
    [utc(2026, 11, 1), utc(2016, 12, 31, 23, 59, 59, 999_999), utc(1, 1, 1), utc(9999, 12, 31)],
)
def test_formatted_times_parse_back(moment: datetime) -> None:
    text = format_rfc3339(moment)
    assert text.endswith("Z")
    assert parse_rfc3339(text) == moment


def test_naive_is_utc_only_when_asked() -> None:
    assert parse_rfc3339("2026-11-01T10:00:00", naive_is_utc=True) == utc(2026, 11, 1, 10)
    with pytest.raises(TimeFormatError, match="ambiguous"):
        parse_rfc3339("2026-11-01T10:00:00")


NOW = utc(2026, 11, 5, 12, 30)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", utc(2026, 11, 5, 12, 15)),
        ("24h", utc(2026, 11, 4, 12, 30)),
        ("7d", utc(2026, 10, 29, 12, 30)),
        ("2w", utc(2026, 10, 22, 12, 30)),
        ("0s", NOW),
        ("2026-11-01", utc(2026, 11, 1)),
        ("2024-02-29", utc(2024, 2, 29)),
        ("2026-11-01T08:00:00+01:00", utc(2026, 11, 1, 7)),
        ("2016-12-31T23:59:60Z", LEAP),
    ],
)
def test_search_bounds_take_times_dates_and_durations(text: str, moment: datetime) -> None:
    assert parse_moment(text, NOW) == moment
    # A duration counts back from now in UTC, whatever zone now is given in.
    assert parse_moment(text, NOW.astimezone(timezone(timedelta(hours=2)))) == moment


@pytest.mark.parametrize(
    "text",
    ["yesterday", "now", "1h30m", "15M", "-5m", "1.5h", "5 m", "٣m", "15min", "2026-1-1",
     "2026-02-29", "2026-11-01T25:00:00Z", "9999999999999w", "99999999w", "1e3s", "P1D"],
)  # fmt: skip
def test_other_search_bounds_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(TimeFormatError) as caught:
        parse_moment(text, NOW)
    assert ACCEPTED_FORMS in str(caught.value)
    with pytest.raises(MalformedInput) as refused:  # the API's and CLI's answer: a 400
        parse_time(text, "until", NOW)
    assert refused.value.status == 400
    assert refused.value.details[0]["field"] == "until"
    assert "accepted:" in refused.value.message and refused.value.message.startswith("until:")


def test_dates_and_durations_on_their_own() -> None:
    assert parse_date("2026-11-01") == utc(2026, 11, 1)
    assert parse_duration("36h") == timedelta(days=1, hours=12)
    for bad_date in ("2026-02-29", "26-11-01", "2026-11-01T00:00:00Z"):
        with pytest.raises(TimeFormatError):
            parse_date(bad_date)
    for bad_duration in ("7", "d", "7D", "7days"):
        with pytest.raises(TimeFormatError):
            parse_duration(bad_duration)


def test_relative_bounds_need_a_now_and_absolute_ones_do_not() -> None:
    absolute = parse_query("acme", {"since": "2026-11-01", "until": "2026-11-02T00:00:00Z"})
    assert (absolute.filters.since_us, absolute.now_us) == (_us(utc(2026, 11, 1)), None)
    with pytest.raises(TypeError, match="now="):
        parse_query("acme", {"since": "24h"})


def test_every_page_of_a_relative_search_covers_the_first_pages_window() -> None:
    params = {"since": "24h", "until": "1h", "action": "user.*"}
    first = parse_query("acme", params, now=NOW)
    assert first.filters.since_us == _us(NOW - timedelta(hours=24))
    assert first.filters.until_us == _us(NOW - timedelta(hours=1))
    cursor = encode_cursor(first, Position(123, 7))
    later = NOW + timedelta(minutes=10)  # the next page is asked for later
    resumed = parse_query("acme", {**params, "cursor": cursor}, now=later)
    assert resumed.filters == first.filters
    assert resumed.after == Position(123, 7)
    # A fresh search (no cursor) counts back from its own now.
    fresh = parse_query("acme", params, now=later)
    assert fresh.filters.since_us == _us(later - timedelta(hours=24))
    # Another window with the same cursor is another search.
    with pytest.raises(MalformedInput, match="other filters"):
        parse_query("acme", {**params, "since": "48h", "cursor": cursor}, now=later)


def test_cursors_of_absolute_searches_do_not_carry_a_now() -> None:
    params = {"since": "2026-11-01"}
    query = parse_query("acme", params)
    cursor = encode_cursor(query, Position(5, 1))
    assert parse_query("acme", {**params, "cursor": cursor}).after == Position(5, 1)
    assert len(cursor) == len(encode_cursor(query, Position(5, 1)))
    relative = parse_query("acme", {"since": "1d"}, now=NOW)
    assert len(encode_cursor(relative, Position(5, 1))) > len(cursor)


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)

"""Timestamps as senders and people write them: one RFC 3339 parser for every
timestamp input, and the search filters' short forms (a date, a duration).

Pure: no clock and no I/O; whoever needs "now" passes it in. Every function
returns an aware datetime in UTC, or raises `TimeFormatError` (a ValueError)
whose message says what is wrong; callers name the field and pick the status.

RFC 3339 section 5.6 grammar, with these decisions:

- `T`/`Z` may be lower case (5.6 NOTE); a space may stand for `T` (5.6 NOTE
  allows it "for the sake of readability"; it is what SQL and many logs print).
- An offset is required: `Z`, `+hh:mm` or `-hh:mm`. Without one the moment is
  ambiguous (UTC? the sender's local time?), and an audit record must not
  guess. `-00:00` (4.3: UTC, local offset unknown) is UTC. Offsets are
  converted to UTC.
- Seconds may carry a fraction of any number of digits; beyond microseconds it
  is truncated, never rounded (rounding 23:59:59.9999999 would move an event
  into the next second, or the next year).
- A leap second (`:60`, 5.7) is accepted at any date and offset and stored as
  the last microsecond of that minute (`23:59:59.999999`), so it sorts after
  every other moment of the minute; seconds above 60 are refused.
- Only ASCII digits count (`re.ASCII`): Python's `int()` would read Arabic-
  Indic or full-width digits, RFC 3339's DIGIT is %x30-39.
- Real dates only (`2016-02-30` is refused), years 0001-9999 after the
  conversion to UTC (`9999-12-31T23:00:00-05:00` is refused, not a crash).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# Longer texts are refused before any parsing (bounded work, short messages).
MAX_TIME_TEXT = 64
DURATION_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
ACCEPTED_FORMS = (
    "an RFC 3339 time (2026-11-01T08:00:00Z, 2026-11-01T10:00:00+02:00), "
    "a date (2026-11-01, midnight UTC) or a duration before now "
    "(a whole number and one unit of s, m, h, d, w: 90s, 15m, 24h, 7d, 2w)"
)
# For OpenAPI: the duration form, as a JSON Schema pattern.
DURATION_PATTERN = r"^[0-9]{1,12}[smhdw]$"

_DATE_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
# The common case for the fast path: upper-case T and Z, seconds 00-59, at
# most 6 fraction digits (Python 3.11's fromisoformat would truncate more, but
# the general path states that rule once).
_COMMON_FORM = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
_DATE = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})", re.ASCII)
_DURATION = re.compile(r"(?P<count>\d{1,12})(?P<unit>[smhdw])", re.ASCII)
_LAST_MICROSECOND = 999_999


class TimeFormatError(ValueError):
    """A text that is not a time of the accepted forms; the message says why."""


def parse_rfc3339(text: str, *, naive_is_utc: bool = False) -> datetime:
    """The UTC moment of an RFC 3339 date-time (see the module docstring).

    `naive_is_utc` reads a time without an offset as UTC instead of refusing
    it; only for a vendor whose API documents its times as UTC.
    Raises TimeFormatError.
    """
    if _COMMON_FORM.fullmatch(text):
        # The form nearly every sender uses, read by the C parser (about 15x
        # faster); anything it refuses (no such date, a year past 9999 in UTC)
        # takes the path below for its message.
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    found = _DATE_TIME.fullmatch(text) if len(text) <= MAX_TIME_TEXT else None
    if found is None:
        raise _error(text, "not an RFC 3339 time like 2026-11-01T08:00:00Z")
    if found["offset"] is None and not naive_is_utc:
        raise _error(text, "no UTC offset (Z or +hh:mm), so the moment is ambiguous")
    zone = _zone(found["offset"], text)
    second, microsecond = int(found["second"]), _microseconds(found["fraction"])
    if second > 60:  # datetime would say "0..59", but 60 is accepted: say so
        raise _error(text, "second must be 0..60, 60 only for a leap second")
    if second == 60:  # a leap second: the last microsecond of its minute
        second, microsecond = 59, _LAST_MICROSECOND
    try:
        local = datetime(
            int(found["year"]),
            int(found["month"]),
            int(found["day"]),
            int(found["hour"]),
            int(found["minute"]),
            second,
            microsecond,
            tzinfo=zone,
        )
    except ValueError as exc:  # no such date, hour 24, minute 60 ...
        raise _error(text, str(exc)) from None
    try:
        return local.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 or 0001-01-01T00:00:00+01:00
        raise _error(text, "outside the years 0001-9999 in UTC") from None


def parse_date(text: str) -> datetime:
    """Midnight UTC of a full-date (`2026-11-01`, RFC 3339 full-date).

    Raises TimeFormatError.
    """
    found = _DATE.fullmatch(text)
    if found is None:
        raise _error(text, "not a date like 2026-11-01")
    try:
        return datetime(int(found["year"]), int(found["month"]), int(found["day"]), tzinfo=UTC)
    except ValueError as exc:
        raise _error(text, str(exc)) from None


def parse_duration(text: str) -> timedelta:
    """A duration of one whole number and one unit: s, m (minutes), h, d, w.

    `15m` is 15 minutes, `7d` 7 days of 86,400 s. Raises TimeFormatError.
    """
    found = _DURATION.fullmatch(text)
    if found is None:
        raise _error(text, "not a duration like 15m or 7d")
    try:
        return timedelta(seconds=int(found["count"]) * DURATION_UNITS[found["unit"]])
    except OverflowError:
        raise _error(text, "too long a duration") from None


def parse_moment(text: str, now: datetime) -> datetime:
    """A search bound: an RFC 3339 time, a date (midnight UTC), or a duration
    meaning that long before `now` (an aware datetime). The UTC moment.

    Raises TimeFormatError, whose message names the accepted forms.
    """
    try:
        if _DURATION.fullmatch(text):
            return now.astimezone(UTC) - parse_duration(text)
        if _DATE.fullmatch(text):
            return parse_date(text)
        if _DATE_TIME.fullmatch(text):
            return parse_rfc3339(text)
    except OverflowError:
        raise TimeFormatError(
            f"{_shown(text)}: reaches before the year 0001; accepted: {ACCEPTED_FORMS}"
        ) from None
    except TimeFormatError as exc:
        raise TimeFormatError(f"{exc}; accepted: {ACCEPTED_FORMS}") from None
    raise TimeFormatError(f"{_shown(text)} is not a time; accepted: {ACCEPTED_FORMS}")


def is_relative(text: str) -> bool:
    """Whether `text` is the duration form, whose moment depends on now."""
    return _DURATION.fullmatch(text) is not None


def format_rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a `Z` (microseconds if any)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _microseconds(fraction: str | None) -> int:
    # Truncated to 6 digits: a fraction never carries into the next second.
    return 0 if fraction is None else int(fraction[:6].ljust(6, "0"))


def _zone(offset: str | None, text: str) -> timezone:
    if offset is None or offset in ("Z", "z"):
        return UTC
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:  # RFC 3339 time-numoffset: 00-23 : 00-59
        raise _error(text, f"the offset {offset} is out of range")
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _shown(text: str) -> str:
    """The text quoted for a message, cut short: it comes from a sender."""
    return repr(text[:MAX_TIME_TEXT] + ("..." if len(text) > MAX_TIME_TEXT else ""))


def _error(text: str, reason: str) -> TimeFormatError:
    return TimeFormatError(f"{_shown(text)}: {reason}")

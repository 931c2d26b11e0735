"""The one pattern rule of the settings: an exact value, or a prefix ending in `*`."""

from __future__ import annotations

from collections.abc import Iterable


def matches(pattern: str, value: str) -> bool:
    """Whether `value` is `pattern`, or starts with it when it ends in `*`."""
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


def matches_any(patterns: Iterable[str], value: str) -> bool:
    """Whether any of `patterns` matches `value`."""
    return any(matches(p, value) for p in patterns)

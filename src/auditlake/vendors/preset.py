"""A CloudEvents preset: what a `[[sources.cloudevents]]` block with
`preset = "<vendor>"` gets unless it says otherwise, and how the vendor's
events are refined after the generic CloudEvents mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from auditlake.core.cloudevents import CloudEvent
from auditlake.core.event import EventInput


@dataclass(frozen=True)
class CloudEventsPreset:
    """A vendor's OIDC issuer and audience, the token subjects of a group's
    subscriptions, the event types kept by default, more types a source's
    flag adds (flag name -> type), and the refinement of a mapped item."""

    issuer: str
    audience: str
    subjects: Callable[[str], tuple[str, ...]]
    types: tuple[str, ...]
    optional_types: Mapping[str, str]
    refine: Callable[[EventInput, CloudEvent], EventInput]

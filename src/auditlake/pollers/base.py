"""What every poller shares: the window it asks for, what a vendor module
provides (`Fetcher`), and the errors that decide retry or dead letter.

Lifecycle contract of a `Fetcher` (one vendor API, one account):

- `pages(window)` yields the raw items of `[window.since, window.before)`
  page by page, in the vendor's order. It retries what can be retried (429
  and 503 after `Retry-After`, other 5xx, timeouts) itself and raises a
  transient `AuditlakeError` when it gives up, or a permanent one when the
  vendor refuses (bad token, `success: false`). Either way the poll stops and
  the checkpoint does not move.
- `map_item(raw)` turns one item into a `Mapped` event, or raises
  `InvalidItem` with the reason; the poll dead-letters that item and goes on.
- Neither logs nor raises anything that contains the API token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

import msgspec

from auditlake.core.event import EventInput
from auditlake.core.normalize import Provenance
from auditlake.errors import AuditlakeError


class Window(msgspec.Struct, frozen=True):
    """The time range one poll asks for: `since` inclusive, `before` exclusive."""

    since: datetime
    before: datetime


class Mapped(msgspec.Struct, frozen=True):
    """One vendor item as an event input, with its provenance (`source`,
    `raw` = the whole item) and when it happened."""

    item: EventInput
    provenance: Provenance
    occurred_at: datetime


class InvalidItem(AuditlakeError):
    """A vendor item that cannot be mapped; it is dead-lettered with the reason."""

    status = 422
    code = "invalid_item"


class VendorError(AuditlakeError):
    """The vendor API refused or failed the request (after any retries)."""

    status = 502
    code = "vendor_error"


class Fetcher(Protocol):
    """One vendor API for one account."""

    def pages(self, window: Window) -> Iterator[list[Any]]:
        """The raw items of `window`, page by page."""
        ...

    def map_item(self, raw: Any) -> Mapped:
        """The event of one raw item, or `InvalidItem`."""
        ...

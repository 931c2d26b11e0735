"""Cloudflare account audit logs: v1 (`/audit_logs`, numbered pages) and v2
(`/logs/audit`, cursors), fetched by time window; `cloudflare_mapping` turns
their items into events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from auditlake.config import CloudflareSource
from auditlake.pollers.base import Fetcher, Mapped, VendorError, Window
from auditlake.pollers.cloudflare_mapping import map_v1, map_v2, object_or_empty
from auditlake.pollers.http import JsonGetter, VendorUnavailable, vendor_messages


class _Api:
    """What both versions share: the source, the getter (whose counters the
    poller reads) and the endpoint."""

    endpoint = ""

    def __init__(self, source: CloudflareSource, getter: JsonGetter) -> None:
        self.source = source
        self.getter = getter
        account = quote(source.account_id, safe="")
        self._url = f"{source.base_url.rstrip('/')}/accounts/{account}/{self.endpoint}"
        self._path = httpx.URL(self._url).path

    def _page(self, params: dict[str, str | int]) -> tuple[list[Any], dict[str, Any]]:
        return _result(self.getter.get(self._url, params), self._path, self.getter)


class CloudflareV1(_Api):
    """`GET /accounts/{id}/audit_logs`: numbered pages, oldest first."""

    endpoint = "audit_logs"

    def pages(self, window: Window) -> Iterator[list[Any]]:
        """The items of `window`, one list per page, until the last page
        (`result_info.total_pages`, or else a short page)."""
        per_page = self.source.page_size
        params: dict[str, str | int] = {
            **_window_params(window),
            "direction": "asc",
            "per_page": per_page,
            "hide_user_logs": "true" if self.source.hide_user_logs else "false",
        }
        page = 1
        while True:
            items, info = self._page({**params, "page": page})
            if items:
                yield items
            total_pages = info.get("total_pages")
            # `total_pages` decides when given: a short page then only means
            # the API capped per_page lower than asked, not the end.
            if isinstance(total_pages, int) and not isinstance(total_pages, bool):
                if page >= total_pages:
                    return
            elif len(items) < per_page:
                return
            page += 1

    def map_item(self, raw: Any) -> Mapped:
        """The event of one v1 item, or `InvalidItem`."""
        return map_v1(raw, self.source.account_id)


class CloudflareV2(_Api):
    """`GET /accounts/{id}/logs/audit`: cursor pages, oldest first."""

    endpoint = "logs/audit"

    def pages(self, window: Window) -> Iterator[list[Any]]:
        """The items of `window`, one list per page, until no cursor or an empty page."""
        params: dict[str, str | int] = {
            **_window_params(window),
            "limit": self.source.page_size,
            "direction": "asc",
        }
        cursor = ""
        while True:
            items, info = self._page({**params, "cursor": cursor} if cursor else params)
            if not items:
                return
            yield items
            following = info.get("cursor")
            if not isinstance(following, str) or not following:
                return
            if following == cursor:  # would loop forever
                raise VendorUnavailable(f"GET {self._path}: the cursor did not advance")
            cursor = following

    def map_item(self, raw: Any) -> Mapped:
        """The event of one v2 item, or `InvalidItem`."""
        return map_v2(raw, self.source.account_id)


def make_fetcher(source: CloudflareSource, client: httpx.Client) -> Fetcher:
    """The fetcher of `source.api`, with a `JsonGetter` from the source's settings."""
    getter = JsonGetter(
        client,
        token=source.token,
        timeout=source.timeout_seconds,
        max_attempts=source.max_attempts,
        max_backoff=source.max_backoff_seconds,
    )
    if source.api == "v1":
        return CloudflareV1(source, getter)
    return CloudflareV2(source, getter)


def _window_params(window: Window) -> dict[str, str | int]:
    return {"since": _rfc3339(window.since), "before": _rfc3339(window.before)}


def _rfc3339(moment: datetime) -> str:
    """UTC with `Z`; fractions only when present, so `before` is not rounded down."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _result(body: Any, path: str, getter: JsonGetter) -> tuple[list[Any], dict[str, Any]]:
    """A page's `result` and `result_info`; `success: false` is a permanent refusal."""
    if not isinstance(body, dict):
        raise VendorUnavailable(f"GET {path}: the body is not a JSON object", {"path": path})
    if body.get("success") is False:
        messages = [getter.redact(m) for m in vendor_messages(body)]
        text = "; ".join(messages) or "no error given"
        raise VendorError(
            f"Cloudflare refused GET {path}: {text}", {"path": path, "errors": messages}
        )
    result = body.get("result")
    if not isinstance(result, list):
        raise VendorUnavailable(f"GET {path}: the body has no result list", {"path": path})
    return result, object_or_empty(body.get("result_info"))

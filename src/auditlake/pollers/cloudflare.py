"""Cloudflare account audit logs: v1 (`/audit_logs`, numbered pages) and v2
(`/logs/audit`, cursors), fetched by time window; `cloudflare_mapping` turns
their items into events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from auditlake.core.strict_json import DuplicateKey
from auditlake.pollers.base import Fetcher, InvalidItem, Mapped, VendorError, Window
from auditlake.pollers.cloudflare_mapping import map_v1, map_v2, object_or_empty
from auditlake.pollers.http import JsonGetter, VendorUnavailable, vendor_messages
from auditlake.source_settings import CloudflareSource

_ITEM_PATH = re.compile(r"result\[(\d+)\](?:[.\[]|$)")


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
        # The current page's items that name a key twice (by id()) -> the reason.
        self._ambiguous: dict[int, str] = {}

    def _page(self, params: dict[str, str | int]) -> tuple[list[Any], dict[str, Any]]:
        items, info = _result(self.getter.get(self._url, params), self._path, self.getter)
        self._ambiguous = _ambiguous_items(items, self.getter.duplicate_keys, self._path)
        return items, info

    def _refuse_if_ambiguous(self, raw: Any) -> None:
        """An item of the current page that names a key twice is dead-lettered
        (which value the vendor meant is unknown); the rest of the page is kept."""
        reason = self._ambiguous.get(id(raw))
        if reason is not None:
            raise InvalidItem(reason)


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
        self._refuse_if_ambiguous(raw)
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
        self._refuse_if_ambiguous(raw)
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


def _ambiguous_items(items: list[Any], repeated: list[DuplicateKey], path: str) -> dict[int, str]:
    """The items (by id()) that name a key twice, with the reason. A key given
    twice outside the items (`result`, `result_info`, `success`) makes the
    whole page ambiguous: VendorUnavailable, so the checkpoint stays and a
    later poll asks again."""
    found: dict[int, list[str]] = {}
    for duplicate in repeated:
        item = _ITEM_PATH.match(duplicate.path)
        if item is None or int(item[1]) >= len(items):
            details = {"path": path, "key": duplicate.key, "at": duplicate.path}
            raise VendorUnavailable(
                f"GET {path}: the body names the key {duplicate.key!r} twice (at "
                f"{duplicate.path}); the page is ambiguous and is not kept",
                details,
            )
        found.setdefault(int(item[1]), []).append(duplicate.path)
    return {
        id(items[index]): "the item names a key twice, so which value the vendor meant is "
        f"unknown: {', '.join(paths)}"
        for index, paths in found.items()
    }


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

"""Pieces every part of the OpenAPI document uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": ref(name)}}}


def errors(*statuses: int, described: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Error responses; `described` replaces the usual description of a status."""
    texts = {**STATUS, **(described or {})}
    return {str(s): {"description": texts[s], **json_body("Error")} for s in statuses}


STATUS = {
    400: (
        "Malformed JSON or not UTF-8, a JSON object that names a key twice (`details` gives "
        "its path), or a body that is not valid for its Content-Encoding."
    ),
    401: "No API key, or an unknown or revoked one.",
    403: "The key lacks the scope, or names another tenant.",
    404: "No such event for this tenant.",
    409: (
        "A different event is already stored under an id of the request (or two of its "
        "events share an id but differ); nothing was stored. `details` names each "
        "(`id`, `index` in the request). An identical re-send is a 200 duplicate instead."
    ),
    413: (
        "The body is over the size limit (decompressed, with a Content-Encoding); its "
        "detail (`field` body) gives the `limit` in bytes."
    ),
    415: (
        "A Content-Encoding other than gzip, x-gzip or deflate (or more than one); its detail "
        "(`field` Content-Encoding) gives it as `encoding` and the supported ones."
    ),
    422: "Invalid event(s); `details` lists each field (and `index`, in a batch).",
    429: (
        "This key already runs as many searches or exports as it may (`limit` in the "
        "detail); retry after `Retry-After`."
    ),
    503: "Overloaded or shutting down; retry after `Retry-After` seconds.",
}

"""The one root exception of auditlake and its families.

Every error says whether retrying can help (`transient`) and which HTTP status
and machine-readable code it maps to, so the web layer and the CLI never have
to guess.
"""

from __future__ import annotations

from typing import Any

Detail = dict[str, Any]


class AuditlakeError(Exception):
    """Root of every error auditlake raises on purpose.

    `details` is what a client may act on, in one shape for every status:
    None when there is nothing to add, else a list of objects, each with a
    `message` and, when the fault is in one input, the `field` it is in (a
    body path such as `events[2].actor.id`, a query parameter, a header).
    An error adds keys of its own to its objects: `id` and `index` (409),
    `encoding` and `supported` (415), `limit` and `retry_after` (429),
    `retry_after` (503). A raiser may give its one detail as a single object
    (429 and 503 do: the web layer reads its `retry_after`, in seconds, for
    the Retry-After header); `to_body` sends it as a list of that one object.
    """

    status = 500
    code = "internal"
    transient = False
    # The `field` of a detail given as a single object that names none.
    detail_field: str | None = None

    def __init__(self, message: str, details: list[Detail] | Detail | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        """The JSON error body the API returns for this error:
        `{"error": {"code", "message", "details"}}`, `details` as the class says."""
        details = self.detail_list()
        return {"error": {"code": self.code, "message": self.message, "details": details}}

    def detail_list(self) -> list[Detail] | None:
        """`details` in the one documented shape (see the class): a list of
        objects, each with a `message` (this error's when it gave none)."""
        if self.details is None:
            return None
        given = self.details if isinstance(self.details, list) else [self.details]
        shaped = []
        for item in given:
            named = {"field": self.detail_field} if self.detail_field else {}
            shaped.append({**named, "message": self.message, **item})
        return shaped


class MalformedInput(AuditlakeError):
    """The request cannot be read as sent: a body that is not parseable (bad
    JSON, not UTF-8, too deep, a key given twice), a header value, or a query
    parameter that is unknown, repeated, empty or not in its accepted form."""

    status = 400
    code = "malformed"


class InvalidInput(AuditlakeError):
    """A well-formed body whose content breaks the event schema or a limit
    (or a search too costly to finish)."""

    status = 422
    code = "invalid"


class Conflict(AuditlakeError):
    """A different event is already stored under an id the request uses, or
    two events of one request share an id but differ. Nothing of the request
    was stored; `details` lists `{"id", "index", "message"}` per conflicting
    event (`index`: its position in the request), with `other_index` (the
    earlier item of the request with that id) when the two are both in it."""

    status = 409
    code = "conflict"


class PayloadTooLarge(AuditlakeError):
    """The body is larger than the configured byte limit; its detail (`field`
    body) gives that limit in bytes as `limit`."""

    status = 413
    code = "too_large"

    def __init__(self, message: str, limit: int) -> None:
        detail = {"field": "body", "message": f"at most {limit} bytes", "limit": limit}
        super().__init__(message, [detail])


class UnsupportedEncoding(AuditlakeError):
    """The body's Content-Encoding is not one the service decodes; its detail
    (`field` Content-Encoding) gives it as `encoding` and the supported ones
    as `supported`."""

    status = 415
    code = "unsupported_encoding"
    detail_field = "Content-Encoding"


class Unauthenticated(AuditlakeError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    code = "unauthenticated"


class Forbidden(AuditlakeError):
    """The key is valid but lacks the scope or tenant the request needs."""

    status = 403
    code = "forbidden"


class NotFound(AuditlakeError):
    """Nothing with that id exists for this tenant."""

    status = 404
    code = "not_found"


class TooManyRequests(AuditlakeError):
    """One client (API key) holds as much as it may at once; retry after a
    pause. Its detail gives the `limit` and `retry_after` (seconds)."""

    status = 429
    code = "too_many_requests"
    transient = True


class Overloaded(AuditlakeError):
    """The write queue is full; the caller should retry after a pause."""

    status = 503
    code = "overloaded"
    transient = True


class Unavailable(AuditlakeError):
    """The service is shutting down or a backend failed; retry later."""

    status = 503
    code = "unavailable"
    transient = True


class ConfigError(AuditlakeError):
    """The configuration file or environment is invalid."""

    code = "config"

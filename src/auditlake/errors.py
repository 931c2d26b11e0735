"""The one root exception of auditlake and its families.

Every error says whether retrying can help (`transient`) and which HTTP status
and machine-readable code it maps to, so the web layer and the CLI never have
to guess.
"""

from __future__ import annotations

from typing import Any


class AuditlakeError(Exception):
    """Root of every error auditlake raises on purpose."""

    status = 500
    code = "internal"
    transient = False

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        """The JSON error body the API returns for this error."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class MalformedInput(AuditlakeError):
    """The request body is not parseable (bad JSON, not UTF-8, too deep)."""

    status = 400
    code = "malformed"


class InvalidInput(AuditlakeError):
    """The body parses but breaks the event schema or a limit."""

    status = 422
    code = "invalid"


class Conflict(AuditlakeError):
    """A different event is already stored under an id the request uses, or
    two events of one request share an id but differ. Nothing of the request
    was stored; `details` lists `{"id", "index", "message"}` per conflicting
    event (`index`: its position in the request)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(AuditlakeError):
    """The body is larger than the configured byte limit."""

    status = 413
    code = "too_large"


class UnsupportedEncoding(AuditlakeError):
    """The body's Content-Encoding is not one the service decodes; `details`
    names it and the supported ones."""

    status = 415
    code = "unsupported_encoding"


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
    """One client (API key) holds as much as it may at once; retry after a pause."""

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

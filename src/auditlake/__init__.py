"""auditlake: an audit-log and event recorder, and its Python client."""

from __future__ import annotations

from auditlake.client import ApiError, Client

__all__ = ["ApiError", "Client"]

"""The `[sources]` blocks of the settings: CloudEvents receivers and
Cloudflare pollers, and how they are settled at load time (presets
expanded, authentication chosen, secrets read from the variables or files
they name, paths and names checked). `config.load_settings` calls
`resolve_sources`; a fault is a `ConfigError` naming the block.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from auditlake.core.event import tenant_fault
from auditlake.errors import ConfigError
from auditlake.vendors import PRESETS

DEFAULT_CLOUDEVENTS_PATH = "/v1/cloudevents"


class OidcAuth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bearer tokens signed by an OIDC issuer (e.g. a vendor pushing events)."""

    issuer: str
    audience: str
    # Where the signing keys are; default: discovered from the issuer's
    # /.well-known/openid-configuration.
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    # Accepted `sub` claims; an entry ending in "*" is a prefix. Empty: any.
    subjects: tuple[str, ...] = ()
    leeway_seconds: float = 60.0


class WebhookAuth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Standard Webhooks signatures (HMAC-SHA256 over id, timestamp and body).

    The secret (`whsec_...`) is named, never written here: `secret_env` is an
    environment variable holding it, `secret_file` a file holding it.
    `secret` is filled in from one of them when the settings are loaded.
    """

    secret_env: str | None = None
    secret_file: str | None = None
    tolerance_seconds: float = 300.0
    secret: str = ""


class CloudEventsSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One `[[sources.cloudevents]]` block: a path that receives CloudEvents."""

    name: str
    tenant: str
    path: str = DEFAULT_CLOUDEVENTS_PATH
    # Default: "oidc" with an [oidc] block (or a preset), "webhook" with a
    # [webhook] block, else "api_key" (an auditlake key with the ingest scope).
    auth: Literal["oidc", "webhook", "api_key"] | None = None
    oidc: OidcAuth | None = None
    webhook: WebhookAuth | None = None
    # Event types kept: exact, or a prefix ending in "*". Empty: keep all.
    # Others are acknowledged and dropped (and counted).
    types: tuple[str, ...] = ()
    # Origins answered in the CloudEvents webhook validation handshake.
    allowed_origins: tuple[str, ...] = ()
    # A vendor's issuer, audience, subject rule and kept types for `group`,
    # and its mapping: one of `vendors.PRESETS` ("chainguard").
    preset: str | None = None
    group: str | None = None
    include_push_events: bool = False


class CloudflareSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One `[[sources.cloudflare]]` block: one account's audit log, polled."""

    name: str
    account_id: str
    # Default: the account id.
    tenant: str | None = None
    api: Literal["v1", "v2"] = "v2"
    # The API token is named, never written here: an environment variable or
    # a file holding it. `token` is filled in from one of them at load time.
    token_env: str | None = None
    token_file: str | None = None
    token: str = ""
    base_url: str = "https://api.cloudflare.com/client/v4"
    poll_interval: float = 60.0
    # Each poll asks again for this much time before the checkpoint, so
    # events the API publishes late are still picked up.
    safety_lag: float = 300.0
    # Where a first poll starts (RFC 3339); default: one poll_interval ago.
    initial_checkpoint: datetime | None = None
    page_size: int = 1000  # v1 `per_page` (the API allows up to 1000), v2 `limit`
    hide_user_logs: bool = False  # v1 only
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    max_backoff_seconds: float = 60.0


class Sources(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where events come from besides the events API."""

    cloudevents: tuple[CloudEventsSource, ...] = ()
    cloudflare: tuple[CloudflareSource, ...] = ()


RESERVED_PATHS = ("/v1/events", "/v1/export", "/healthz", "/readyz", "/metrics", "/openapi.json")


def resolve_sources(given: Sources, env: Mapping[str, str]) -> Sources:
    """Presets expanded, authentication settled, secrets read (from `env`
    or files), paths checked; ConfigError naming the block at fault."""
    sources = tuple(_resolve_source(s, env) for s in given.cloudevents)
    pollers = tuple(_resolve_cloudflare(s, env) for s in given.cloudflare)
    names = [s.name for s in pollers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"two [[sources.cloudflare]] blocks are named {repeated[0]!r}")
    for label, values in (("path", [s.path for s in sources]), ("name", [s.name for s in sources])):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(
                f"two [[sources.cloudevents]] blocks have the {label} {repeated[0]!r}"
            )
    return Sources(cloudevents=sources, cloudflare=pollers)


def _resolve_source(source: CloudEventsSource, env: Mapping[str, str]) -> CloudEventsSource:
    where = f"[[sources.cloudevents]] {source.name!r}"
    if source.preset is not None:
        source = _with_preset(source, where)
    if (fault := tenant_fault(source.tenant)) is not None:
        raise ConfigError(f"{where}: tenant {fault}")
    if not source.path.startswith("/"):
        raise ConfigError(f"{where}: path {source.path!r} must start with /")
    if any(source.path == r or source.path.startswith(r + "/") for r in RESERVED_PATHS):
        raise ConfigError(f"{where}: path {source.path!r} is one of auditlake's own routes")
    auth = source.auth or ("oidc" if source.oidc else "webhook" if source.webhook else "api_key")
    if auth == "oidc" and source.oidc is None:
        raise ConfigError(f"{where}: auth 'oidc' needs an [oidc] block (issuer, audience)")
    webhook = _with_secret(source.webhook, env, where) if auth == "webhook" else source.webhook
    return msgspec.structs.replace(source, auth=auth, webhook=webhook)


def _with_preset(source: CloudEventsSource, where: str) -> CloudEventsSource:
    """The preset vendor's issuer, audience, subject rule and event types,
    unless the block sets them."""
    preset = PRESETS.get(str(source.preset))
    if preset is None:
        known = ", ".join(map(repr, PRESETS))
        raise ConfigError(f"{where}: unknown preset {source.preset!r}; accepted: {known}")
    if not source.group:
        raise ConfigError(f"{where}: preset {source.preset!r} needs 'group' (your group id)")
    oidc = source.oidc or OidcAuth(issuer=preset.issuer, audience=preset.audience)
    if not oidc.subjects:
        oidc = msgspec.structs.replace(oidc, subjects=preset.subjects(source.group))
    flagged = tuple(t for flag, t in preset.optional_types.items() if getattr(source, flag))
    types = source.types or preset.types + flagged
    return msgspec.structs.replace(source, oidc=oidc, types=types, auth=source.auth or "oidc")


def _resolve_cloudflare(source: CloudflareSource, env: Mapping[str, str]) -> CloudflareSource:
    where = f"[[sources.cloudflare]] {source.name!r}"
    tenant = source.tenant or source.account_id
    if not source.account_id.strip():
        raise ConfigError(f"{where}: account_id must not be blank")
    if (fault := tenant_fault(tenant)) is not None:
        raise ConfigError(f"{where}: tenant (default: the account_id) {fault}")
    if source.poll_interval <= 0 or source.safety_lag < 0 or source.max_attempts < 1:
        raise ConfigError(f"{where}: poll_interval > 0, safety_lag >= 0, max_attempts >= 1")
    if not 1 <= source.page_size <= 1000:
        raise ConfigError(f"{where}: page_size must be 1 to 1000")
    if not (source.token_env or source.token_file):
        raise ConfigError(
            f"{where}: name the API token's variable (token_env) or file (token_file)"
        )
    token = _read_secret(source.token_env, source.token_file, env, where)
    if not (token.isascii() and token.isprintable()):
        raise ConfigError(f"{where}: the API token has characters a token cannot have")
    start = source.initial_checkpoint
    if start is not None:
        start = start if start.tzinfo else start.replace(tzinfo=UTC)  # no offset: UTC
        if start > datetime.now(UTC):
            raise ConfigError(f"{where}: initial_checkpoint is in the future")
    return msgspec.structs.replace(source, tenant=tenant, token=token, initial_checkpoint=start)


def _with_secret(webhook: WebhookAuth | None, env: Mapping[str, str], where: str) -> WebhookAuth:
    """The webhook settings with `secret` read from its variable or file."""
    if webhook is None:
        raise ConfigError(f"{where}: auth 'webhook' needs a [webhook] block")
    if not (webhook.secret_env or webhook.secret_file):
        raise ConfigError(f"{where}: [webhook] needs secret_env or secret_file")
    secret = _read_secret(webhook.secret_env, webhook.secret_file, env, where)
    return msgspec.structs.replace(webhook, secret=secret)


def _read_secret(variable: str | None, file: str | None, env: Mapping[str, str], where: str) -> str:
    """A secret from the environment variable `variable`, else from `file`."""
    if variable:
        secret = env.get(variable, "").strip()
        if not secret:
            raise ConfigError(f"{where}: the variable {variable} is not set")
        return secret
    if not file:
        raise ConfigError(f"{where}: name the variable or the file that holds the secret")
    try:
        secret = Path(file).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {file}: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"{where}: the file {file} is empty")
    return secret

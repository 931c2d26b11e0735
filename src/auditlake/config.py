"""The one settings object: defaults, then a TOML file, then `AUDITLAKE_*`
environment variables, then command-line flags.

Nested fields are reached with a double underscore in the environment:
`AUDITLAKE_LIMITS__MAX_BATCH_EVENTS=500`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from auditlake.core import chainguard
from auditlake.core.event import TENANT_PATTERN
from auditlake.core.normalize import Limits
from auditlake.errors import ConfigError

ENV_PREFIX = "AUDITLAKE_"
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
    # "chainguard": issuer, audience, subject rule and kept types of
    # Chainguard's events for `group`, and the pull-event mapping.
    preset: Literal["chainguard"] | None = None
    group: str | None = None
    include_push_events: bool = False


class Sources(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where events come from besides the events API."""

    cloudevents: tuple[CloudEventsSource, ...] = ()


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything auditlake can be configured with."""

    data_dir: str = "data"
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    # Events waiting for a group commit before the API answers 503.
    queue_capacity: int = 50_000
    # Upper bound of one group commit (one transaction, one fsync).
    max_commit_events: int = 10_000
    # The recorder indexes for search at most this many events per step.
    index_batch_events: int = 20_000
    # Writes wait (at most `admit_wait_seconds`, then 503) while the events
    # acknowledged but not yet searchable are more than this many, or would
    # take the recorder longer than `max_index_lag_seconds` at its recent rate.
    # That bounds how stale a search can be under load, on any machine.
    max_index_lag_events: int = 20_000
    max_index_lag_seconds: float = 0.3
    admit_wait_seconds: float = 5.0
    # A search first waits (up to this long) until every event acknowledged
    # before it is searchable.
    search_wait_seconds: float = 2.0
    # How long a verified API key is trusted before it is looked up again,
    # so a revocation takes effect within this many seconds.
    key_cache_seconds: float = 2.0
    limits: Limits = Limits()
    sources: Sources = Sources()

    @property
    def journal_path(self) -> Path:
        """The embedded journal (SQLite) inside the data folder."""
        return Path(self.data_dir) / "journal.db"

    @property
    def store_path(self) -> Path:
        """The embedded store (the search index) inside the data folder."""
        return Path(self.data_dir) / "store.db"

    @property
    def keys_path(self) -> Path:
        """The API keys inside the data folder."""
        return Path(self.data_dir) / "keys.db"


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers into one validated Settings, or raise ConfigError."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged = _read_toml(config_file)
    for name, value in (env or {}).items():
        path = name[len(ENV_PREFIX) :].lower().split("__")
        # Other AUDITLAKE_* variables (the client's URL and key) are not settings.
        if name.startswith(ENV_PREFIX) and value != "" and path[0] in Settings.__struct_fields__:
            _set_path(merged, path, value)
    for name, value in (overrides or {}).items():
        if value is not None:
            merged[name] = value
    try:
        settings = msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    return _resolve_sources(settings, env or {})


RESERVED_PATHS = ("/v1/events", "/healthz", "/readyz", "/metrics", "/openapi.json")


def _resolve_sources(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Presets expanded, authentication settled, secrets read, paths checked."""
    sources = tuple(_resolve_source(s, env) for s in settings.sources.cloudevents)
    for label, values in (("path", [s.path for s in sources]), ("name", [s.name for s in sources])):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(
                f"two [[sources.cloudevents]] blocks have the {label} {repeated[0]!r}"
            )
    return msgspec.structs.replace(settings, sources=Sources(cloudevents=sources))


def _resolve_source(source: CloudEventsSource, env: Mapping[str, str]) -> CloudEventsSource:
    where = f"[[sources.cloudevents]] {source.name!r}"
    if source.preset == "chainguard":
        source = _chainguard_preset(source, where)
    if not TENANT_PATTERN.match(source.tenant):
        raise ConfigError(f"{where}: tenant {source.tenant!r} is not a valid tenant name")
    if not source.path.startswith("/"):
        raise ConfigError(f"{where}: path {source.path!r} must start with /")
    if any(source.path == r or source.path.startswith(r + "/") for r in RESERVED_PATHS):
        raise ConfigError(f"{where}: path {source.path!r} is one of auditlake's own routes")
    auth = source.auth or ("oidc" if source.oidc else "webhook" if source.webhook else "api_key")
    if auth == "oidc" and source.oidc is None:
        raise ConfigError(f"{where}: auth 'oidc' needs an [oidc] block (issuer, audience)")
    webhook = _with_secret(source.webhook, env, where) if auth == "webhook" else source.webhook
    return msgspec.structs.replace(source, auth=auth, webhook=webhook)


def _chainguard_preset(source: CloudEventsSource, where: str) -> CloudEventsSource:
    """Chainguard's issuer, audience, subject rule and event types, unless set."""
    if not source.group:
        raise ConfigError(f"{where}: preset 'chainguard' needs 'group' (your group id)")
    oidc = source.oidc or OidcAuth(issuer=chainguard.ISSUER, audience=chainguard.AUDIENCE)
    if not oidc.subjects:
        oidc = msgspec.structs.replace(oidc, subjects=chainguard.subjects(source.group))
    kept = (chainguard.PULL_TYPE, chainguard.PUSH_TYPE)
    types = source.types or (kept if source.include_push_events else kept[:1])
    return msgspec.structs.replace(source, oidc=oidc, types=types, auth=source.auth or "oidc")


def _with_secret(webhook: WebhookAuth | None, env: Mapping[str, str], where: str) -> WebhookAuth:
    """The webhook settings with `secret` read from its variable or file."""
    if webhook is None:
        raise ConfigError(f"{where}: auth 'webhook' needs a [webhook] block")
    if webhook.secret_env:
        secret = env.get(webhook.secret_env, "").strip()
        if not secret:
            raise ConfigError(f"{where}: the variable {webhook.secret_env} is not set")
    elif webhook.secret_file:
        try:
            secret = Path(webhook.secret_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot read {webhook.secret_file}: {exc.strerror}"
            ) from None
        if not secret:
            raise ConfigError(f"{where}: the file {webhook.secret_file} is empty")
    else:
        raise ConfigError(f"{where}: [webhook] needs secret_env or secret_file")
    return msgspec.structs.replace(webhook, secret=secret)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = msgspec.toml.decode(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the config file {path} must be a TOML table")
    return data


def _set_path(target: dict[str, Any], path: list[str], value: str) -> None:
    for part in path[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{ENV_PREFIX}{'__'.join(path).upper()} conflicts with the config")
        target = child
    target[path[-1]] = value

"""The one settings object: defaults, then a TOML file, then `AUDITLAKE_*`
environment variables, then command-line flags.

Nested fields are reached with a double underscore in the environment:
`AUDITLAKE_LIMITS__MAX_BATCH_EVENTS=500`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from auditlake.core.event import tenant_fault
from auditlake.core.normalize import Limits
from auditlake.errors import ConfigError
from auditlake.vendors import PRESETS

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


class S3Lake(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The lake on an S3-compatible store. Credentials come from the standard
    AWS sources (environment, profile, instance role)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    allow_http: bool = False


class LakeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[lake]`: every event also lands in Parquet files (the archiver)."""

    enabled: bool = True
    folder: str | None = None  # default: <data_dir>/lake
    s3: S3Lake | None = None  # instead of the folder
    # A batch is archived when this many events wait, or the oldest waited this long.
    batch_events: int = 10_000
    batch_seconds: float = 60.0


Days = Annotated[int, msgspec.Meta(ge=0)]


class RetentionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[retention]`: how many days (by `occurred_at`) the hot store keeps a
    tenant's events once the lake has them; 0 keeps them for ever. Searches
    over older ranges read the lake."""

    days: Days = 0
    tenants: dict[str, Days] = {}  # per tenant, instead of `days`
    # Rehydrated events stay this long after their rehydration.
    rehydrated_days: Annotated[int, msgspec.Meta(ge=1)] = 7
    every_seconds: Annotated[float, msgspec.Meta(gt=0)] = 3600.0

    def days_for(self, tenant: str) -> int:
        """The tenant's retention in days (0: for ever)."""
        return self.tenants.get(tenant, self.days)

    @property
    def active(self) -> bool:
        """Whether any tenant's events ever leave the store."""
        return bool(self.days or any(self.tenants.values()))


class JournalSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[journal]`: where every accepted event is kept first. `sqlite`, the
    embedded file, is the one backend so far."""

    backend: Literal["sqlite"] = "sqlite"
    path: str | None = None  # the SQLite file; default: <data_dir>/journal.db


class StoreSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[store]`: what searches read, filled by the recorder. `sqlite`, the
    embedded file, is the one backend so far."""

    backend: Literal["sqlite"] = "sqlite"
    path: str | None = None  # the SQLite file; default: <data_dir>/store.db


class Sources(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where events come from besides the events API."""

    cloudevents: tuple[CloudEventsSource, ...] = ()
    cloudflare: tuple[CloudflareSource, ...] = ()


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything auditlake can be configured with."""

    data_dir: str = "data"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080  # 0: any free port
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
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
    # Threads for reads (searches, gets, exports) of all clients together, and
    # apart from them for API key checks: ingest and key checks never wait
    # behind a slow search. Further reads wait for a thread.
    read_threads: Annotated[int, msgspec.Meta(ge=1)] = 4
    key_check_threads: Annotated[int, msgspec.Meta(ge=1)] = 4
    # What one API key may run at once; one more is a 429 with Retry-After.
    max_searches_per_key: Annotated[int, msgspec.Meta(ge=1)] = 4
    max_exports_per_key: Annotated[int, msgspec.Meta(ge=1)] = 2
    limits: Limits = Limits()
    journal: JournalSettings = JournalSettings()
    store: StoreSettings = StoreSettings()
    sources: Sources = Sources()
    lake: LakeSettings = LakeSettings()
    retention: RetentionSettings = RetentionSettings()

    @property
    def journal_path(self) -> Path:
        """The SQLite journal: `[journal] path`, or inside the data folder."""
        return Path(self.journal.path or Path(self.data_dir) / "journal.db")

    @property
    def store_path(self) -> Path:
        """The SQLite store (the search index): `[store] path`, or inside the data folder."""
        return Path(self.store.path or Path(self.data_dir) / "store.db")

    @property
    def pollers_path(self) -> Path:
        """The pollers' checkpoints and dead letters inside the data folder."""
        return Path(self.data_dir) / "pollers.db"

    @property
    def consumers_path(self) -> Path:
        """The journal consumers' dead letters inside the data folder."""
        return Path(self.data_dir) / "consumers.db"

    @property
    def lake_folder(self) -> Path:
        """The lake's folder when it is not on S3."""
        return Path(self.lake.folder or Path(self.data_dir) / "lake")

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
        raise ConfigError(f"invalid configuration: {exc}{_accepted(str(exc))}") from None
    if settings.retention.active and not settings.lake.enabled:
        raise ConfigError("[retention] needs the lake: events leave the store only once archived")
    return _resolve_sources(settings, env or {})


_SEQUENCES = (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)


def _accepted(error: str) -> str:
    """`; accepted: ...` for an error about a value outside a fixed set (an
    unknown backend, say), read from the settings' types; else nothing."""
    found = re.search(r"Invalid enum value .* at `\$\.([\w.\[\]]+)`", error)
    if found is None:
        return ""
    info: Any = msgspec.inspect.type_info(Settings)
    for name in re.sub(r"\[\d+\]", "", found.group(1)).split("."):
        while isinstance(info, (msgspec.inspect.UnionType, *_SEQUENCES)):
            info = (  # an optional block, or a list of blocks
                info.item_type
                if isinstance(info, _SEQUENCES)
                else next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
            )
        fields = {f.encode_name: f.type for f in getattr(info, "fields", ())}
        if name not in fields:
            return ""
        info = fields[name]
    values = [
        v
        for t in (info.types if isinstance(info, msgspec.inspect.UnionType) else (info,))
        if isinstance(t, msgspec.inspect.LiteralType)
        for v in t.values
    ]
    return f"; accepted: {', '.join(map(repr, values))}" if values else ""


RESERVED_PATHS = ("/v1/events", "/v1/export", "/healthz", "/readyz", "/metrics", "/openapi.json")


def _resolve_sources(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Presets expanded, authentication settled, secrets read, paths checked."""
    sources = tuple(_resolve_source(s, env) for s in settings.sources.cloudevents)
    pollers = tuple(_resolve_cloudflare(s, env) for s in settings.sources.cloudflare)
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
    return msgspec.structs.replace(
        settings, sources=Sources(cloudevents=sources, cloudflare=pollers)
    )


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

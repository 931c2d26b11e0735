"""The one settings object: defaults, then a TOML file, then `AUDITLAKE_*`
environment variables, then command-line flags.

Nested fields are reached with a double underscore in the environment:
`AUDITLAKE_LIMITS__MAX_BATCH_EVENTS=500`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from auditlake.core.normalize import Limits
from auditlake.errors import ConfigError
from auditlake.source_settings import Sources, resolve_sources

ENV_PREFIX = "AUDITLAKE_"


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
    return msgspec.structs.replace(settings, sources=resolve_sources(settings.sources, env or {}))


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

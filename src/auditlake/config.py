"""The one settings object: defaults, then a TOML file, then `AUDITLAKE_*`
environment variables, then command-line flags.

Nested fields are reached with a double underscore in the environment:
`AUDITLAKE_LIMITS__MAX_BATCH_EVENTS=500`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from auditlake.core.normalize import Limits
from auditlake.errors import ConfigError

ENV_PREFIX = "AUDITLAKE_"


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
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


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

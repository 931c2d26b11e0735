"""Where each partition file of the lake lives, and the layout before it.

The layout (every file the archiver writes):

    <tenant>/year=<Y>/month=<M>/day=<D>/hour=<H>/events.parquet

- `<tenant>` is the tenant's name percent-quoted (`urllib.parse.quote` with
  nothing safe: `a:b` is `a%3Ab`), upper-case letters included (`Acme` is
  `%41cme`): tenant names are case-sensitive, and on a case-insensitive file
  system (macOS, Windows) folders `Acme` and `acme` would be one. Quoted,
  every folder name is lower-case but for the hex digits of its escapes, so
  no two tenants' folders differ by case alone. It is a plain folder, not `tenant=...`:
  a reader's hive partitioning then derives no `tenant` column from it, and
  `tenant` comes from the file's own string column, whatever the name looks
  like (`123`, `007`, `null`, `2026-01-01`). With `tenant=123` pyarrow
  inferred int32 and refused the lake ("string vs int32"), and DuckDB typed
  the column BIGINT, DATE or VARCHAR depending on the names present.
- `<Y>/<M>/<D>/<H>` are the event's UTC hour as decimal integers without
  leading zeros (`month=1`, `hour=0`): every value looks like an integer, so
  pyarrow's hive partitioning always infers int32 and DuckDB's
  `hive_partitioning` always BIGINT. Zero-padded, DuckDB kept `01` as
  VARCHAR but read `11` as BIGINT, a type that depended on the data.

The legacy layout (written before issue 11, moved by `lake.migrate`):

    tenant=<tenant>/year=YYYY/month=MM/day=DD/hour=HH/events.parquet

(`<tenant>` quoted with `urllib.parse.quote` alone: letters as they are.)

No tenant folder of the layout can be a legacy one: a tenant name has no
`=`, and quoting keeps it that way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from auditlake.core.event import from_micros, is_tenant, to_micros

FILE_NAME = "events.parquet"
LEGACY_PREFIX = "tenant="

_HOUR = re.compile(
    r"year=([1-9]\d{0,3})/month=([1-9]\d?)/day=([1-9]\d?)/hour=(0|[1-9]\d?)/" + re.escape(FILE_NAME)
)
_LEGACY_HOUR = re.compile(
    r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/" + re.escape(FILE_NAME)
)


def partition_path(tenant: str, occurred_at: datetime) -> str:
    """`<quoted tenant>/year=Y/month=M/day=D/hour=H/events.parquet` for the
    UTC hour of `occurred_at` (an aware datetime), numbers unpadded."""
    t = occurred_at.astimezone(UTC)
    return (
        f"{tenant_folder(tenant)}year={t.year}/month={t.month}/day={t.day}/hour={t.hour}/"
        f"{FILE_NAME}"
    )


def tenant_folder(tenant: str) -> str:
    """The tenant's folder, with a trailing `/`: `Acme:1` is `%41cme%3A1/`."""
    return f"{_quoted(tenant)}/"


def legacy_tenant_folder(tenant: str) -> str:
    """The tenant's folder in the legacy layout, with a trailing `/`."""
    return f"{LEGACY_PREFIX}{quote(tenant, safe='')}/"


def tenant_of_folder(name: str) -> str | None:
    """The tenant whose folder (in either layout) is `name`, or None when
    `name` is no tenant's folder."""
    legacy = name.startswith(LEGACY_PREFIX)
    quoted = name.removeprefix(LEGACY_PREFIX)
    tenant = unquote(quoted)
    if not is_tenant(tenant) or (quote(tenant, safe="") if legacy else _quoted(tenant)) != quoted:
        return None  # not written by the archiver
    return tenant


def _quoted(tenant: str) -> str:
    """`tenant` percent-quoted, upper-case ASCII letters too."""
    return "".join(f"%{ord(c):02X}" if "A" <= c <= "Z" else quote(c, safe="") for c in tenant)


def hour_start(rest: str, *, legacy: bool = False) -> int | None:
    """The hour (epoch microseconds) of a partition file, given its path
    below the tenant's folder; None for anything else in the folder."""
    match = (_LEGACY_HOUR if legacy else _HOUR).fullmatch(rest)
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return to_micros(datetime(year, month, day, hour, tzinfo=UTC))
    except ValueError:
        return None  # digits that name no hour: not written by the archiver


def moved_path(legacy_path: str) -> str | None:
    """Where the legacy partition file `legacy_path` belongs in the layout;
    None for a path that is not a legacy partition file."""
    folder, _, rest = legacy_path.partition("/")
    tenant = tenant_of_folder(folder) if folder.startswith(LEGACY_PREFIX) else None
    start = hour_start(rest, legacy=True) if tenant is not None else None
    if tenant is None or start is None:
        return None
    return partition_path(tenant, from_micros(start))

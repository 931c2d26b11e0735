"""A synthetic but realistic audit-log workload, shared by the benchmarks.

~50 tenants of skewed size, ~40 actions under common prefixes (user.*,
monitor.*, ...), ~10k actors spread over the tenants, 1-2 targets per event
and a little metadata. Everything is drawn from one seeded `random.Random`, so
a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import msgspec

from auditlake.core.event import Actor, Context, ErrorInfo, EventInput, Target

TENANTS = 50
ACTORS = 10_000
DAY_US = 86_400_000_000
ACTIONS: dict[str, str] = {  # prefix -> verbs
    "user": "signed_in signed_out created updated deleted invited password_changed mfa_enabled"
    " mfa_disabled role_changed",
    "monitor": "created updated deleted paused resumed failed recovered degraded",
    "incident": "created acknowledged resolved updated",
    "status_page": "created updated published deleted",
    "team": "created member_added member_removed renamed",
    "api_key": "created revoked rotated",
    "billing": "plan_changed invoice_paid payment_failed",
    "notification": "sent failed channel_added channel_removed",
}
HOT_ACTIONS = {
    "user.signed_in": 30.0,
    "monitor.failed": 12.0,
    "monitor.recovered": 12.0,
    "notification.sent": 10.0,
    "user.signed_out": 6.0,
    "monitor.updated": 4.0,
}
TARGET_KINDS = {
    "user": "usr",
    "monitor": "mon",
    "incident": "inc",
    "status_page": "page",
    "team": "team",
    "api_key": "key",
    "billing": "sub",
    "notification": "chan",
}
FIRST = [
    "ada",
    "alan",
    "grace",
    "linus",
    "barbara",
    "ken",
    "dennis",
    "margaret",
    "edsger",
    "donald",
    "frances",
    "john",
    "radia",
    "tim",
    "vint",
    "sophie",
    "niklaus",
    "hedy",
]
SYLLABLES = ["ka", "lo", "mi", "ren", "sto", "var", "del", "mon", "tis", "gar", "bel", "quin"]
REGIONS = ["frankfurt", "virginia", "oregon", "singapore", "sydney", "saopaulo"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (Macintosh) Safari/17.4",
    "curl/8.5.0",
    "openstatus-cli/1.4.2",
    "terraform-provider/0.9.1",
]


@dataclass
class TenantPools:
    """The actors and targets one tenant's events refer to."""

    name: str
    actors: list[Actor]
    targets: dict[str, list[Target]]


@dataclass
class Workload:
    """Draws events; `tenants` and `weights` are the skewed tenant sizes."""

    seed: int = 7
    rng: random.Random = field(init=False)
    tenants: list[TenantPools] = field(init=False)
    cum_weights: list[float] = field(init=False)
    actions: list[str] = field(init=False)
    action_cum: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        weights = [1.0 / (rank + 1) ** 0.9 for rank in range(TENANTS)]
        total = sum(weights)
        self.cum_weights = list(accumulate(w / total for w in weights))
        self.tenants = [self._pools(i, weights[i] / total) for i in range(TENANTS)]
        self.actions = [f"{p}.{verb}" for p, verbs in ACTIONS.items() for verb in verbs.split()]
        self.action_cum = list(accumulate(HOT_ACTIONS.get(a, 1.0) for a in self.actions))

    def _pools(self, index: int, share: float) -> TenantPools:
        rng = self.rng
        name = f"org{index:02d}{_word(rng, 2)}"
        actors = [_actor(rng, name) for _ in range(max(20, round(ACTORS * share)))]
        per_kind = max(10, round(20_000 * share))
        targets = {
            kind: [_target(rng, prefix, kind) for _ in range(per_kind)]
            for kind, prefix in TARGET_KINDS.items()
        }
        return TenantPools(name, actors, targets)

    def tenant(self) -> TenantPools:
        """A tenant, weighted by its size."""
        return self.rng.choices(self.tenants, cum_weights=self.cum_weights)[0]

    def action(self) -> str:
        """An action, the hot ones more often."""
        return self.rng.choices(self.actions, cum_weights=self.action_cum)[0]

    def event(self, pools: TenantPools, occurred_at: datetime | None = None) -> EventInput:
        """One event of `pools`' tenant (the tenant itself comes from the key)."""
        rng = self.rng
        action = self.action()
        kind = action.partition(".")[0]
        actor = _pick(rng, pools.actors)
        targets = [_pick(rng, pools.targets[kind])]
        if rng.random() < 0.4:
            targets.append(rng.choice(pools.targets["team"]))
        failed = action.endswith(("failed", "payment_failed")) or rng.random() < 0.03
        return EventInput(
            action=action,
            occurred_at=occurred_at.isoformat() if occurred_at else None,
            actor=actor,
            targets=targets,
            context=Context(
                ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.7", user_agent=rng.choice(AGENTS)
            ),
            outcome="failure" if failed else "success",
            error=ErrorInfo(code="timeout", message="upstream timed out") if failed else None,
            metadata={"region": rng.choice(REGIONS), "plan": rng.choice(("free", "team", "pro"))},
        )

    def event_json(self, pools: TenantPools) -> dict[str, Any]:
        """`event()` as the plain JSON object a producer would POST (no nulls)."""
        event: dict[str, Any] = _drop_nulls(msgspec.to_builtins(self.event(pools)))
        return event


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _pick(rng: random.Random, items: list[Any]) -> Any:
    """Skewed choice: a few actors / targets are far busier than the rest."""
    return items[int(len(items) * rng.random() ** 2)]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables))


def _actor(rng: random.Random, tenant: str) -> Actor:
    roll = rng.random()
    if roll < 0.9:
        first, last = rng.choice(FIRST), _word(rng, 3)
        return Actor(
            id=f"usr{rng.getrandbits(40):010x}",
            type="user",
            name=f"{first.title()} {last.title()}",
            email=f"{first}.{last}@{tenant}.io",
        )
    if roll < 0.98:
        return Actor(id=f"key{rng.getrandbits(40):010x}", type="api_key")
    return Actor(id=f"sys{rng.getrandbits(24):06x}", type="system", name="scheduler")


def _target(rng: random.Random, prefix: str, kind: str) -> Target:
    name = _word(rng, 2) if kind in ("team", "monitor", "status_page") else None
    return Target(id=f"{prefix}{rng.getrandbits(40):010x}", type=kind, name=name)


def time_window(days: int = 90) -> tuple[int, int]:
    """A fixed [start, end) of `days` days in epoch microseconds (reproducible)."""
    end = datetime(2025, 6, 1, tzinfo=UTC)
    start = end - timedelta(days=days)
    return _micros(start), _micros(end)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000

"""Cloudflare audit-log items (v1 `/audit_logs`, v2 `/logs/audit`) as events.

Mapping, both versions: id = `id`; action = `action.type`; occurred_at =
`when` (v1) or `action.time` (v2); outcome = failure for `false`, a missing
or empty result, or "failure"/"failed"/"false" (any case), else success
(v1 sends a boolean, v2 "success"/"failure"). The actor's id falls back to
its email, then its ip; an actor with none of them is left out (the item
stays in `raw`). Targets: the resource and the zone, merged when the
resource is that zone. What has no field of its own goes to `metadata`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from auditlake.core.event import Actor, Context, EventInput, Outcome, Target
from auditlake.core.normalize import Provenance
from auditlake.core.times import TimeFormatError, format_rfc3339, parse_rfc3339
from auditlake.pollers.base import InvalidItem, Mapped

# Under the 64 KiB metadata limit with room for the `truncated` list.
METADATA_BUDGET = 60 * 1024
FAILED = frozenset({"failure", "failed", "false"})
# Actor fields with a place of their own; the rest go to actor.metadata.
_ACTOR_FIELDS = frozenset({"id", "type", "email", "ip", "ip_address"})
_encode = msgspec.json.encode


def map_v1(raw: Any, account_id: str) -> Mapped:
    """One `/audit_logs` item as an event."""
    item, event_id, action, kind = _head(raw)
    occurred = _time(item.get("when"), "when")
    actor = _actor(item, "ip")
    meta = item.get("metadata")
    zone_name = _text(meta.get("zone_name")) if isinstance(meta, dict) else None
    metadata = {
        "metadata": meta,
        "new_value": item.get("newValue"),
        "old_value": item.get("oldValue"),
        "interface": item.get("interface"),
        "owner": item.get("owner"),
    }
    targets = _targets(_resource(item.get("resource"), None), None, zone_name)
    head = (event_id, kind, occurred, action)
    return _mapped(account_id, item, head, actor, targets, None, metadata)


def map_v2(raw: Any, account_id: str) -> Mapped:
    """One `/logs/audit` item as an event."""
    item, event_id, action, kind = _head(raw)
    occurred = _time(action.get("time"), "action.time")
    actor = _actor(item, "ip_address")
    resource, request, zone = (object_or_empty(item.get(k)) for k in ("resource", "raw", "zone"))
    metadata = {
        "description": action.get("description"),
        "account": item.get("account"),
        "resource_scope": resource.get("scope"),
        "product": resource.get("product"),
        "request": resource.get("request"),
        "response": resource.get("response"),
        "raw_request": item.get("raw"),
    }
    zone_id, zone_name = _text(zone.get("id")), _text(zone.get("name"))
    targets = _targets(_resource(item.get("resource"), "product"), zone_id, zone_name)
    user_agent = _text(request.get("user_agent"))
    head = (event_id, kind, occurred, action)
    return _mapped(account_id, item, head, actor, targets, user_agent, metadata)


def _head(raw: Any) -> tuple[dict[str, Any], str, dict[str, Any], str]:
    """The item, its id, its `action` object and `action.type`, all required."""
    if not isinstance(raw, dict):
        raise InvalidItem(f"the item is not a JSON object but {type(raw).__name__}", {"field": ""})
    event_id = _required_text(raw, "id", "id")
    action = raw.get("action")
    if not isinstance(action, dict):
        raise InvalidItem("'action' is missing or not an object", {"field": "action"})
    return raw, event_id, action, _required_text(action, "type", "action.type")


def _required_text(obj: dict[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidItem(f"'{field}' is missing or not a non-empty string", {"field": field})
    return value.strip()


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidItem(f"'{field}' is missing or not a string", {"field": field})
    try:
        # The RFC 3339 parser every timestamp input shares. Cloudflare documents
        # its times as UTC, so one without an offset is read as UTC: a pulled
        # event is not dead-lettered over a format detail its API defines.
        return parse_rfc3339(value.strip(), naive_is_utc=True)
    except TimeFormatError as exc:
        raise InvalidItem(f"'{field}' is not an RFC 3339 time: {exc}", {"field": field}) from None


def _text(value: Any) -> str | None:
    """A field as text: strings stripped (empty -> None), numbers as text, else None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def object_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _has_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, str | dict | list) and not value)


def _actor(item: dict[str, Any], ip_key: str) -> Actor | None:
    value = item.get("actor")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidItem("'actor' is not an object", {"field": "actor"})
    email, ip = _text(value.get("email")), _text(value.get(ip_key))
    actor_id = _text(value.get("id")) or email or ip
    if actor_id is None:  # e.g. a system change: an event without an actor, kept in raw
        return None
    extra = {k: v for k, v in value.items() if k not in _ACTOR_FIELDS and _has_value(v)}
    return Actor(
        id=actor_id,
        type=_text(value.get("type")),
        name=_text(value.get("token_name")) if _is_token(value) else None,
        email=email,
        ip=ip,
        metadata=extra or None,
    )


def _is_token(actor: dict[str, Any]) -> bool:
    """Whether the actor acted through an API token (v2 `context: api_token`,
    or a token id or name given)."""
    if actor.get("context") == "api_token" or actor.get("type") in ("token", "api_token"):
        return True
    return bool(_text(actor.get("token_id")) or _text(actor.get("token_name")))


def _resource(value: Any, name_key: str | None) -> Target | None:
    if not isinstance(value, dict):
        return None
    name = _text(value.get(name_key)) if name_key else None
    target_id = _text(value.get("id")) or name
    if target_id is None:
        return None
    return Target(id=target_id, type=_text(value.get("type")), name=name)


def _targets(resource: Target | None, zone_id: str | None, zone_name: str | None) -> list[Target]:
    """The resource, then the zone (type "zone") unless the resource is that zone."""
    targets = [resource] if resource is not None else []
    if zone_id is None and zone_name is None:
        return targets
    if resource is not None and resource.type == "zone" and zone_id in (None, resource.id):
        resource.name = resource.name or zone_name
        return targets
    targets.append(Target(id=zone_id or zone_name or "", type="zone", name=zone_name))
    return targets


def _outcome(result: Any) -> Outcome:
    if isinstance(result, str):
        result = result.strip().lower()
        return "failure" if not result or result in FAILED else "success"
    return "success" if result else "failure"


def _capped(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value, dropping any that would take the
    serialized metadata over `METADATA_BUDGET` (named in `truncated`)."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    size = 2  # {}
    for key, value in fields.items():
        if not _has_value(value):
            continue
        cost = len(_encode(key)) + len(_encode(value)) + 2  # colon and comma
        if size + cost > METADATA_BUDGET:
            dropped.append(key)
            continue
        kept[key] = value
        size += cost
    if dropped:
        kept["truncated"] = dropped
    return kept


def _mapped(
    account_id: str,
    item: dict[str, Any],
    head: tuple[str, str, datetime, dict[str, Any]],
    actor: Actor | None,
    targets: list[Target],
    user_agent: str | None,
    metadata: dict[str, Any],
) -> Mapped:
    """The event: `head` is (id, action type, occurred_at, the action object)."""
    event_id, kind, occurred, action = head
    ip = actor.ip if actor is not None else None
    event = EventInput(
        action=kind,
        id=event_id,
        occurred_at=format_rfc3339(occurred),
        actor=actor,
        targets=targets,
        context=Context(ip=ip, user_agent=user_agent) if ip or user_agent else None,
        outcome=_outcome(action.get("result")),
        metadata=_capped(metadata) or None,
    )
    provenance = Provenance(source=f"cloudflare:{account_id}", raw=item)
    return Mapped(item=event, provenance=provenance, occurred_at=occurred)

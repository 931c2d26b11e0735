"""Chainguard's registry events, all of what auditlake knows of them: the
CloudEvents preset (`PRESET`: issuer, audience, subject rule, event types),
the pull-event mapping onto the canonical event (`map_pull`), and the typed
pull table (`PULLS`, the columns of Chainguard's own BigQuery table
`dev_chainguard_registry_pull_v1`; its DDL per backend in this folder).
Pure.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from auditlake.core.cloudevents import CloudEvent, bounded_id
from auditlake.core.event import Actor, Context, ErrorInfo, Event, EventInput, Target, to_micros
from auditlake.vendors.preset import CloudEventsPreset
from auditlake.vendors.projection import Projection

ISSUER = "https://issuer.enforce.dev"
AUDIENCE = "customer"
PULL_TYPE = "dev.chainguard.registry.pull.v1"
PUSH_TYPE = "dev.chainguard.registry.push.v1"


def subjects(group: str) -> tuple[str, ...]:
    """The token subjects of `group`'s subscriptions: the group itself, or one
    of its sub-groups (group ids are paths, `parent/child`)."""
    return (f"webhook:{group}", f"webhook:{group}/*")


class PullActor(msgspec.Struct, frozen=True):
    subject: str | None = None
    act: dict[str, Any] | None = None


# An HTTP-like status: anything else is not Chainguard's shape (and would not
# fit the typed table's INTEGER column).
Status = Annotated[int, msgspec.Meta(ge=0, le=999)]


class PullError(msgspec.Struct, frozen=True):
    status: Status | None = None
    code: str | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        """Chainguard: a missing error, or status 0 without a code, is a success."""
        return bool(self.status) or bool(self.code)


class PullBody(msgspec.Struct, frozen=True):
    repository: str | None = None
    repo_id: str | None = None
    tag: str | None = None
    digest: str | None = None
    method: str | None = None
    type: str | None = None
    when: str | None = None
    location: str | None = None
    user_agent: str | None = None
    remote_address: str | None = None
    error: PullError | None = None


class Pull(msgspec.Struct, frozen=True):
    """The data of a `dev.chainguard.registry.pull.v1` event (fields it does
    not name, e.g. newer SDKs' `policy_results`, stay in `raw`)."""

    body: PullBody
    actor: PullActor | None = None


def read_pull(data: Any) -> Pull | None:
    """The pull data, or None when it does not have the documented shape."""
    try:
        return msgspec.convert(data, Pull, strict=False)
    except msgspec.ValidationError:
        return None


def map_pull(item: EventInput, event: CloudEvent) -> EventInput:
    """Refine the generic mapping of a pull event: actor = the identity that
    pulled, targets = repository, tag and digest, context = location, user
    agent and address, outcome = failure when the pull failed."""
    pull = read_pull(event.data)
    if pull is None:  # keep it as a generic CloudEvent rather than lose it
        return item
    body, actor = pull.body, pull.actor
    failed = body.error is not None and body.error.failed
    return msgspec.structs.replace(
        item,
        actor=Actor(id=actor.subject, type="identity") if actor and actor.subject else None,
        targets=_targets(body),
        context=Context(
            location=body.location, user_agent=body.user_agent, ip=body.remote_address or None
        ),
        outcome="failure" if failed else "success",
        error=_error(body.error) if failed else None,
    )


def _targets(body: PullBody) -> list[Target]:
    repository = body.repository or body.repo_id
    targets = []
    if repository:
        repo_id = bounded_id(body.repo_id or repository)
        targets.append(Target(id=repo_id, type="repository", name=body.repository))
    if body.tag:
        tag_id = f"{repository}:{body.tag}" if repository else body.tag
        targets.append(Target(id=bounded_id(tag_id), type="tag", name=body.tag))
    if body.digest:
        targets.append(Target(id=bounded_id(body.digest), type="digest"))
    return targets


def _error(error: PullError | None) -> ErrorInfo | None:
    if error is None:
        return None
    code = error.code or (str(error.status) if error.status else None)
    return ErrorInfo(code=code, message=error.message)


def pull_row(event: Event) -> tuple[Any, ...] | None:
    """The row of a stored pull event in the typed table (`PULLS.columns`),
    or None."""
    if event.action != PULL_TYPE or not isinstance(event.raw, dict):
        return None
    pull = read_pull(event.raw.get("data"))
    if pull is None:
        return None
    body, actor, error = pull.body, pull.actor or PullActor(), pull.body.error
    act = msgspec.json.encode(actor.act).decode() if actor.act else None
    return (
        event.tenant, event.id, to_micros(event.occurred_at), actor.subject, act,
        body.repository, body.repo_id, body.tag, body.digest, body.method, body.type,
        body.when, body.location, body.user_agent, body.remote_address,
        error.status if error else None, error.code if error else None,
        error.message if error else None,
    )  # fmt: skip


def refine(item: EventInput, event: CloudEvent) -> EventInput:
    """The preset's mapping: pull events refined by `map_pull`, others as
    the generic CloudEvents mapping made them."""
    return map_pull(item, event) if event.type == PULL_TYPE else item


PRESET = CloudEventsPreset(
    issuer=ISSUER,
    audience=AUDIENCE,
    subjects=subjects,
    types=(PULL_TYPE,),
    optional_types={"include_push_events": PUSH_TYPE},
    refine=refine,
)

# The pull table's columns after `seq`, in the order of `pull_row`.
PULL_COLUMNS = (
    "tenant", "event_id", "occurred_us", "actor_subject", "actor_act", "repository",
    "repo_id", "tag", "digest", "method", "type", "when", "location", "user_agent",
    "remote_address", "error_status", "error_code", "error_message",
)  # fmt: skip

PULLS = Projection(
    table="chainguard_registry_pull_v1",
    action=PULL_TYPE,
    columns=PULL_COLUMNS,
    row=pull_row,
    package=__name__,
)

"""Reading CloudEvents from an HTTP request: binary, structured and batch
content modes (CloudEvents 1.0 HTTP binding and JSON format).

Binary-mode headers are decoded as the binding's section 3.1.3.2 says
(`cloudevents_headers`); structured and batch bodies and JSON data are decoded
here (msgspec: bounded depth, clear errors; a key given twice is refused) and
each event is built and validated by the SDK's event class.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

from auditlake.core.cloudevents import CloudEvent
from auditlake.core.strict_json import refuse_duplicate_keys
from auditlake.core.times import TimeFormatError, parse_rfc3339
from auditlake.errors import AuditlakeError, InvalidInput, MalformedInput
from auditlake.web.cloudevents_headers import ce_attributes

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
# The SDK's event class fills in a missing id and time; a receiver must not.
REQUIRED = ("specversion", "id", "source", "type")
SPECVERSION = "1.0"
_JSON_DATA = re.compile(
    r"(application|text)/([a-zA-Z0-9.\-]+\+)?json(;.*)?", re.IGNORECASE | re.DOTALL
)


class _StrictJsonFormat(JSONFormat):
    """Binary-mode data: JSON when the content type says so (a bad body is an
    error, not silently text), text for text/*, bytes otherwise."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        if not body:
            return None
        content_type = datacontenttype or "application/json"
        if _JSON_DATA.fullmatch(content_type):
            return _decode_json(body, "data")
        if content_type.lower().startswith("text/"):
            try:
                return body.decode("utf-8")
            except UnicodeDecodeError:
                return body
        return body


def is_batch(headers: Mapping[str, str]) -> bool:
    """Whether the request is in batch mode."""
    return _media_type(headers) == BATCH


def read_events(headers: Mapping[str, str], body: bytes, max_batch: int) -> list[CloudEvent]:
    """The CloudEvents of a request, or a 400 (not JSON) / 422 (not valid
    CloudEvents, every problem listed) error."""
    media_type = _media_type(headers)
    if media_type == BATCH:
        return _read_batch(body, max_batch)
    if media_type == STRUCTURED:
        return [_from_mapping(_decode_json(body), "")]
    if "ce-specversion" in headers:
        return [_read_binary(headers, body)]
    raise InvalidInput(
        "not a CloudEvent: send ce-* headers (binary mode), or a body of type "
        f"{STRUCTURED} or {BATCH}",
        [{"field": "content-type", "message": f"got {media_type or 'none'}"}],
    )


def _read_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    # Every header, repeated ones included (a Starlette `Headers` lists them all).
    attributes: dict[str, Any] = ce_attributes(headers.items())
    _check_required(attributes, "")
    content_type = headers.get("content-type")
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    given = set(attributes)
    # `time` is read here, not by the SDK (dateutil's isoparse is not RFC 3339).
    # A bad ce-time is a header fault (400) like every other ce-* header's.
    if "time" in attributes:
        attributes["time"] = _time(attributes["time"], "ce-time", MalformedInput)
    data = _StrictJsonFormat().read_data(body, content_type)
    try:
        event = get_event_factory_for_version(SPECVERSION)(attributes, data)
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise InvalidInput("the CloudEvent is invalid", _problems(exc, "")) from None
    return _received(event.get_attributes(), given, event.get_data())


def _read_batch(body: bytes, max_batch: int) -> list[CloudEvent]:
    items = _decode_json(body)
    if not isinstance(items, list):
        raise InvalidInput(
            "a batch is a JSON array of CloudEvents", [{"field": "", "message": "not an array"}]
        )
    # An empty batch is allowed (HTTP binding 3.3.2): nothing to store.
    if len(items) > max_batch:
        message = f"a batch holds at most {max_batch} CloudEvents, got {len(items)}"
        raise InvalidInput(message, [{"field": "", "message": message}])
    events, problems = [], []
    for index, item in enumerate(items):
        try:
            events.append(_from_mapping(item, f"[{index}]"))
        except InvalidInput as exc:
            problems += [{**p, "index": index} for p in exc.detail_list() or []]
    if problems:
        raise InvalidInput("the batch is invalid", problems)
    return events


def _from_mapping(obj: Any, where: str) -> CloudEvent:
    """A CloudEvent from its JSON event format (`data` or `data_base64`)."""
    if not isinstance(obj, dict):
        problem = {"field": where, "message": "a CloudEvent is a JSON object"}
        raise InvalidInput("the CloudEvent is invalid", [problem])
    _check_required(obj, where)
    attributes = dict(obj)
    data = attributes.pop("data", None)
    encoded = attributes.pop("data_base64", None)
    given = set(attributes)  # before the SDK's factory adds its own `time` to the dict
    try:
        if data is None and encoded is not None:
            data = base64.b64decode(str(encoded), validate=True)
        if isinstance(attributes.get("time"), str):
            attributes["time"] = _time(attributes["time"], f"{where}.time" if where else "time")
        factory = get_event_factory_for_version(str(attributes.get("specversion", "")))
        event = factory(attributes, data)
    except (BaseCloudEventException, ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("the CloudEvent is invalid", _problems(exc, where)) from None
    return _received(event.get_attributes(), given, event.get_data())


def _time(text: str, field: str, fault: type[AuditlakeError] = InvalidInput) -> datetime:
    """The `time` attribute: RFC 3339 (CloudEvents 1.0 `Timestamp`), read by the
    parser every timestamp input shares; else a `fault` (422 for a body's
    `time`, 400 for the ce-time header) naming `field`."""
    try:
        return parse_rfc3339(text)
    except TimeFormatError as exc:
        problem = {"field": field, "message": str(exc)}
        raise fault(f"{field} is not a valid CloudEvents time: {exc}", [problem]) from None


def _check_required(given: Mapping[str, Any], where: str) -> None:
    prefix = f"{where}." if where else ""
    problems = [
        {"field": prefix + name, "message": "required"} for name in REQUIRED if name not in given
    ]
    if not problems and given["specversion"] != SPECVERSION:
        message = f"this receiver takes CloudEvents {SPECVERSION}"
        problems = [{"field": prefix + "specversion", "message": message}]
    if "data" in given and "data_base64" in given:
        problems.append({"field": prefix + "data_base64", "message": "give data or data_base64"})
    if problems:
        raise InvalidInput("the CloudEvent is invalid", problems)


def _received(attributes: Mapping[str, Any], given: set[str], data: Any) -> CloudEvent:
    """The event as sent: without attributes the SDK filled in itself."""
    return CloudEvent({k: v for k, v in attributes.items() if k in given}, data)


def _problems(exc: Exception, where: str) -> list[dict[str, str]]:
    """One problem per invalid attribute, named as the SDK names them."""
    prefix = f"{where}." if where else ""
    if isinstance(exc, CloudEventValidationError):
        return [
            {"field": prefix + name, "message": "; ".join(str(e) for e in errors)}
            for name, errors in exc.errors.items()
        ]
    return [{"field": where, "message": str(exc)}]


def _decode_json(body: bytes, where: str = "") -> Any:
    """The JSON value of `body`; 400 if it is not JSON or an object in it
    names a key twice (reported under the prefix `where`)."""
    try:
        decoded = msgspec.json.decode(body)
    except RecursionError:
        raise MalformedInput("the JSON is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"the body is not valid JSON: {exc}") from None
    refuse_duplicate_keys(body, decoded, where=where)
    return decoded


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()

"""Reading CloudEvents from an HTTP request: binary, structured and batch
content modes (CloudEvents 1.0 HTTP binding and JSON format).

Binary mode goes through the official SDK's HTTP binding; structured and
batch bodies are decoded here (msgspec: bounded depth, clear errors) and each
event is built and validated by the SDK's event class.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import msgspec
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

from auditlake.core.cloudevents import CloudEvent
from auditlake.core.times import TimeFormatError, parse_rfc3339
from auditlake.errors import InvalidInput, MalformedInput

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
            return _decode_json(body)
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
    wanted = {k: v for k, v in headers.items() if k.startswith("ce-") or k == "content-type"}
    attributes = {k[3:]: v for k, v in wanted.items() if k.startswith("ce-")}
    _check_required(attributes, "")
    given = set(attributes) | ({"datacontenttype"} if "content-type" in wanted else set())
    # `time` is read here, not by the SDK (dateutil's isoparse is not RFC 3339).
    moment = (
        _time(unquote(attributes["time"]).strip(" \t"), "ce-time") if "time" in attributes else None
    )
    wanted.pop("ce-time", None)
    try:
        event = from_binary(HTTPMessage(wanted, body), _StrictJsonFormat())
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise InvalidInput("the CloudEvent is invalid", _problems(exc, "")) from None
    timed = {**event.get_attributes(), "time": moment} if moment else event.get_attributes()
    return _received(timed, given, event.get_data())


def _read_batch(body: bytes, max_batch: int) -> list[CloudEvent]:
    items = _decode_json(body)
    if not isinstance(items, list):
        raise InvalidInput(
            "a batch is a JSON array of CloudEvents", [{"field": "", "message": "not an array"}]
        )
    if not 0 < len(items) <= max_batch:
        message = f"a batch holds 1 to {max_batch} CloudEvents, got {len(items)}"
        raise InvalidInput(message, [{"field": "", "message": message}])
    events, problems = [], []
    for index, item in enumerate(items):
        try:
            events.append(_from_mapping(item, f"[{index}]"))
        except InvalidInput as exc:
            problems += [{**p, "index": index} for p in exc.details]
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


def _time(text: str, field: str) -> datetime:
    """The `time` attribute: RFC 3339 (CloudEvents 1.0 `Timestamp`), read by the
    parser every timestamp input shares; else a 422 naming `field`."""
    try:
        return parse_rfc3339(text)
    except TimeFormatError as exc:
        problem = {"field": field, "message": str(exc)}
        raise InvalidInput("the CloudEvent is invalid", [problem]) from None


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


def _decode_json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except RecursionError:
        raise MalformedInput("the JSON is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"the body is not valid JSON: {exc}") from None


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()

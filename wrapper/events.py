"""Build the nuclio-sdk `Event` every door hands to the handler, as Nuclio's HTTP trigger
builds it (DESIGN §4)."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union
from urllib.parse import parse_qsl, unquote

import nuclio_sdk

Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]

_EPOCH = datetime.datetime(1970, 1, 1)
_SECONDS = datetime.timedelta
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):(\d\d))",
    re.ASCII,
)
_STRUCTURED = "application/cloudevents"
"""Nuclio's prefix of a structured CloudEvent's content type (pkg/processor/trigger/trigger.go)."""
_canonical: dict[str, str] = {}


def canonical_header(name: str) -> str:
    """`content-type` → `Content-Type`, the canonical form whatever the transport sent."""
    known = _canonical.get(name)
    if known is not None:
        return known
    text = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
    if len(_canonical) < 1024:
        _canonical[name] = text
    return text


def request_id_from(given: Optional[str]) -> str:
    """A client's `X-Request-Id` when it is well formed (an id safe to echo), else a new one."""
    return given if given and _REQUEST_ID.fullmatch(given) else new_request_id()


def new_request_id() -> str:
    """A fresh random request id (128 bits, hex)."""
    return os.urandom(16).hex()


def make_event(
    body: bytes = b"",
    *,
    method: str = "GET",
    path: str = "/",
    headers: Headers = (),
    query: str = "",
    trigger_kind: str = "http",
    trigger_name: str = "",
    request_id: Optional[str] = None,
) -> Any:
    """An Event with canonical headers, query fields, a request id and a decoded JSON body.

    The request id is `request_id`, else a well-formed CloudEvent id, else a well-formed
    `X-Request-Id` header, else new. The fields no trigger here fills hold Nuclio's HTTP
    defaults (shard -1, "" and 0); a CloudEvent is mapped as Nuclio maps it.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    canonical: dict[str, str] = {}
    for name, value in pairs:
        key = canonical_header(name)
        canonical[key] = f"{canonical[key]}, {value}" if key in canonical else value
    chosen = request_id is not None
    if request_id is None:
        request_id = request_id_from(canonical.get("X-Request-Id"))
    content_type = canonical.get("Content-Type", "")
    event = nuclio_sdk.Event(
        body=decode_body(body, content_type),
        content_type=content_type,
        trigger=nuclio_sdk.TriggerInfo(trigger_kind, trigger_name),
        fields=dict(parse_qsl(query, keep_blank_values=True)) if query else None,
        headers=canonical,
        _id=request_id,
        method=method,
        path=path,
        size=len(body),
        timestamp=_EPOCH + _SECONDS(0, time.time()),  # naive UTC (now(utc).replace: +0.6 µs)
        url=f"{path}?{query}" if query else path,
        shard_id=-1,
        num_shards=0,
        _type="",
        type_version="",
        version="",
        topic="",
    )
    if (
        content_type.startswith(_STRUCTURED)
        or canonical.get("Ce-Cloudeventsversion")
        or canonical.get("Ce-Specversion")
    ):
        _map_cloud_event(event, body, keep_id=chosen)
    return event


def decode_body(body: bytes, content_type: str) -> Any:
    """The body as an object when the content type is exactly `application/json`.

    Nuclio's Python wrapper's rule (nuclio_sdk/event.py): with parameters (`; charset=utf-8`),
    in other case or `+json`, it stays bytes. A body that fails to decode stays bytes, as in
    Nuclio: the handler decides. Nesting too deep for the decoder (`[[[[…`) is one such
    failure: json raises RecursionError there.
    """
    if content_type != "application/json" or not body:
        return body
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return body


# --- CloudEvents ----------------------------------------------------------------------------

_V01_ATTRIBUTES = {
    "eventid": "id",
    "source": "source",
    "eventtype": "type",
    "eventtypeversion": "type_version",
    "cloudeventsversion": "version",
    "eventtime": "time",
    "contenttype": "content_type",
}
"""CloudEvents 0.1 JSON attributes (lower case: Go's decoder matches them case-blind)."""
_V10_ATTRIBUTES = {
    "id": "id",
    "source": "source",
    "type": "type",
    "specversion": "version",
    "time": "time",
    "datacontenttype": "content_type",
}
_V10_DATA = ("data", "data_base64")


def _map_cloud_event(event: Any, body: bytes, *, keep_id: bool) -> None:
    """Nuclio's mapping (pkg/processor/cloudevent): structured when the content type starts
    with `application/cloudevents`, else binary (its `CE-*` headers). A structured body that is
    not a CloudEvent leaves the plain HTTP event (Nuclio answers 500 without calling)."""
    if event.content_type.startswith(_STRUCTURED):
        attributes = _structured(body)
        if attributes is None:
            return
    else:
        attributes = _binary(event.headers)
    ce_id = attributes.pop("id")
    if not keep_id and _REQUEST_ID.fullmatch(ce_id):
        event.id = ce_id
    moment = _utc(attributes.pop("time"))
    if moment is not None:
        event.timestamp = moment
    source = attributes.pop("source")
    event.trigger = nuclio_sdk.TriggerInfo(source, attributes.pop("name", source))
    for name, value in attributes.items():
        setattr(event, name, value)


def _structured(body: bytes) -> Optional[dict[str, Any]]:
    """The Event fields a structured CloudEvent (0.1 as Nuclio reads it, or 1.0) sets, or None
    when the body is not one: not a JSON object, or an attribute of the wrong type."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    v1 = "specversion" in document
    if not v1:
        document = {key.lower(): value for key, value in document.items()}
    names = _V10_ATTRIBUTES if v1 else _V01_ATTRIBUTES
    attributes: dict[str, Any] = {}
    for key, name in names.items():
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            return None
        attributes[name] = value or ""
    if v1:
        encoded = document.get("data_base64")
        if encoded is None:
            data = document.get("data")
        elif not isinstance(encoded, str):
            return None
        else:
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return None
        headers = {k: v for k, v in document.items() if k not in names and k not in _V10_DATA}
    else:
        data = document.get("data")
        extensions = document.get("extensions")
        offset = document.get("offset")
        offset = 0 if offset is None else offset
        if not isinstance(extensions, (dict, type(None))) or type(offset) is not int:
            return None
        headers = extensions or {}
        attributes["offset"] = offset
    attributes["headers"] = headers
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, bytes):
        attributes["body"] = decode_body(data, attributes["content_type"])
        attributes["size"] = len(data)
    else:  # a JSON value (object, array, number, boolean) stays that value; none is empty
        attributes["body"] = b"" if data is None else data
        attributes["size"] = 0
    return attributes


def _binary(headers: dict[str, str]) -> dict[str, Any]:
    """The Event fields a binary CloudEvent's headers set: 0.1 as Nuclio reads them, or 1.0
    (`ce-specversion`, values percent-encoded as its HTTP binding says)."""
    get = headers.get
    if get("Ce-Cloudeventsversion"):
        return {
            "id": get("Ce-Eventid", ""),
            "source": get("Ce-Source", ""),
            "name": get("Ce-Name", ""),
            "type": get("Ce-Eventtype", ""),
            "type_version": get("Ce-Eventtypeversion", ""),
            "version": get("Ce-Cloudeventsversion", ""),
            "time": get("Ce-Eventtime", ""),
        }
    return {
        "id": unquote(get("Ce-Id", "")),
        "source": unquote(get("Ce-Source", "")),
        "type": unquote(get("Ce-Type", "")),
        "version": unquote(get("Ce-Specversion", "")),
        "time": unquote(get("Ce-Time", "")),
    }


def _utc(text: str) -> Optional[datetime.datetime]:
    """An RFC 3339 time as a naive UTC datetime, or None when it is not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, hours, minutes = match.groups()
    micro = int((fraction or "")[:6].ljust(6, "0"))
    try:
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro
        )
        if sign:
            offset = datetime.timedelta(hours=int(hours), minutes=int(minutes))
            moment = moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError):
        return None
    return moment

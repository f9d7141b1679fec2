"""Build the nuclio-sdk `Event` every door hands to the handler (DESIGN §4)."""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union
from urllib.parse import parse_qsl

import nuclio_sdk

Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
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

    The request id is `request_id`, else a well-formed `X-Request-Id` header, else new.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    canonical: dict[str, str] = {}
    for name, value in pairs:
        key = canonical_header(name)
        canonical[key] = f"{canonical[key]}, {value}" if key in canonical else value
    if request_id is None:
        given = canonical.get("X-Request-Id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else new_request_id()
    content_type = canonical.get("Content-Type", "")
    fields: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        fields.setdefault(key, value)
    return nuclio_sdk.Event(
        body=decode_body(body, content_type),
        content_type=content_type,
        trigger=nuclio_sdk.TriggerInfo(trigger_kind, trigger_name),
        fields=fields,
        headers=canonical,
        _id=request_id,
        method=method,
        path=path,
        size=len(body),
        timestamp=datetime.datetime.now(datetime.timezone.utc),
        url=f"{path}?{query}" if query else path,
    )


def decode_body(body: bytes, content_type: str) -> Any:
    """The body as an object when the content type is JSON (`application/json`, `*+json`).

    A body that fails to decode stays bytes, as Nuclio does: the handler decides. Nesting too
    deep for the decoder (`[[[[…`) is one such failure: json raises RecursionError there.
    """
    lowered = content_type.lower()
    if not body or "json" not in lowered:
        return body
    mime = lowered.split(";", 1)[0].strip()
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return body
    return body

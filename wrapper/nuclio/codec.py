"""The processor's messages in and out: msgpack event maps → Events, Replies → `r` lines.

Facts from Nuclio's protocol (NUCLIO_PROTOCOL.md §4-§5); choices of ours (DESIGN §4):
headers in canonical form, a JSON body decoded only for a JSON content type, an aware UTC
timestamp, missing keys given defaults rather than refused.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
from typing import Any, Optional, Union

import msgpack
import nuclio_sdk

from wrapper.events import canonical_header, decode_body, new_request_id
from wrapper.reply import Reply

Events = Union[Any, list[Any]]
"""One Event, or a batch: a list of them."""

MIN_DURATION = sys.float_info.min
"""The processor logs a 0 duration as an error, so the shortest duration sent is this."""

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class MalformedEvent(ValueError):
    """A frame that is not an event map (or a list of them)."""


def decode_events(payload: bytes, decode_strings: bool) -> tuple[Events, bool]:
    """The event (or batch) in one frame's payload, and whether it was a batch.

    With `decode_strings` off (the processor's `--decode-event-strings` absent), every
    string stays bytes, keys and values, as Nuclio's raw mode has it.
    """
    try:
        data = msgpack.unpackb(payload, raw=not decode_strings)
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"a string in the event is not UTF-8 ({exc.reason})") from None
    except (ValueError, msgpack.UnpackException) as exc:
        raise MalformedEvent(f"the frame is not one msgpack value ({exc})") from None
    if isinstance(data, dict):
        return _event(data, decode_strings), False
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return [_event(item, decode_strings) for item in data], True
    raise MalformedEvent(f"expected an event map or a list of them, got {type(data).__name__}")


def _event(data: dict[Any, Any], decoded: bool) -> Any:
    if not decoded:
        return _raw_event(data)
    get = data.get
    body = get("body", b"")
    content_type = get("content_type") or ""
    if type(body) is bytes:
        body = decode_body(body, content_type)
    headers = get("headers") or {}
    trigger = get("trigger") or {}
    return nuclio_sdk.Event(
        body=body,
        content_type=content_type,
        trigger=nuclio_sdk.TriggerInfo(trigger.get("kind", ""), trigger.get("name", "")),
        fields=get("fields") or {},
        headers={canonical_header(str(k)): v for k, v in headers.items()},
        _id=get("id") or new_request_id(),
        method=get("method") or "",
        path=get("path") or "/",
        size=get("size", 0),
        timestamp=_timestamp(get("timestamp")),
        url=get("url") or "",
        shard_id=get("shard_id"),
        num_shards=get("num_shards"),
        _type=get("type"),
        type_version=get("type_version"),
        version=get("version"),
        offset=get("offset"),
        topic=get("topic"),
    )


def _raw_event(data: dict[Any, Any]) -> Any:
    """Nuclio's raw mode: keys and string values stay bytes; only the body is decoded."""
    get = data.get
    body = get(b"body", b"")
    content_type = get(b"content_type") or b""
    if type(body) is bytes:
        body = decode_body(body, content_type.decode("latin-1"))
    trigger = get(b"trigger") or {}
    return nuclio_sdk.Event(
        body=body,
        content_type=content_type,
        trigger=nuclio_sdk.TriggerInfo(trigger.get(b"kind", b""), trigger.get(b"name", b"")),
        fields=get(b"fields") or {},
        headers=get(b"headers") or {},
        _id=get(b"id") or new_request_id().encode(),
        method=get(b"method") or b"",
        path=get(b"path") or b"/",
        size=get(b"size", 0),
        timestamp=_timestamp(get(b"timestamp")),
        url=get(b"url") or b"",
        shard_id=get(b"shard_id"),
        num_shards=get(b"num_shards"),
        _type=get(b"type"),
        type_version=get(b"type_version"),
        version=get(b"version"),
        offset=get(b"offset"),
        topic=get(b"topic"),
    )


def _timestamp(seconds: Any) -> datetime.datetime:
    """The processor's Unix seconds as an aware UTC datetime (now when absent)."""
    if isinstance(seconds, (int, float)) and seconds > 0:
        return _EPOCH + datetime.timedelta(seconds=seconds)
    return datetime.datetime.now(datetime.timezone.utc)


def event_id(event: Any) -> str:
    """An event's id as text (raw mode keeps it bytes)."""
    value = event.id
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def response_object(reply: Reply, event: Optional[str] = None) -> dict[str, Any]:
    """The processor's response object: a UTF-8 body as text, any other body base64."""
    body = reply.body
    try:
        text, encoding = body.decode(), "text"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode(), "base64"
    answer: dict[str, Any] = {
        "body": text,
        "body_encoding": encoding,
        "content_type": reply.content_type or "",
        "status_code": reply.status,
        "headers": reply.headers,
    }
    if event is not None:
        answer["event_id"] = event
    return answer


def reply_lines(answer: Union[dict[str, Any], list[dict[str, Any]]], duration: float) -> bytes:
    """The `m` (duration) and `r` (response) lines that end one event or batch."""
    return b"".join(
        (
            b'm{"duration": ',
            repr(max(duration, MIN_DURATION)).encode(),
            b"}\nr",
            json.dumps(answer, ensure_ascii=False, default=str).encode(),
            b"\n",
        )
    )


def error_line(answer: Union[dict[str, Any], list[dict[str, Any]]]) -> bytes:
    """An `r` line without `m`: for events that reached no handler."""
    return b"r" + json.dumps(answer).encode() + b"\n"

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
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Callable, Optional, Union

import msgpack
import nuclio_sdk

from wrapper.events import canonical_header, decode_body, new_request_id
from wrapper.reply import Reply

Events = Union[Any, list[Any]]
"""One Event, or a batch: a list of them."""

MIN_DURATION = sys.float_info.min
"""The processor logs a 0 duration as an error, so the shortest duration sent is this."""

_UTC = datetime.timezone.utc


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
    return WireEvent(data) if decoded else RawWireEvent(data)


class WireEvent(nuclio_sdk.Event):  # type: ignore[misc]
    """A nuclio-sdk Event whose fields are read from the processor's map when first used.

    Most handlers touch two or three of the twenty fields: building each on first access
    (then keeping it, so it can also be reassigned) saves most of an event's decoding.
    """

    raw = False
    """Nuclio's raw mode: keys and string values stay bytes."""

    def __init__(self, data: dict[Any, Any]) -> None:  # the fields are read lazily
        self._wire = data

    def __getattr__(self, name: str) -> Any:
        read = _FIELDS.get(name)
        if read is None:
            raise AttributeError(name)
        value = read(self)
        setattr(self, name, value)
        return value

    def to_json(self) -> str:
        for name in _FIELDS:
            getattr(self, name)
        return str(super().to_json())

    def _get(self, key: str, default: Any = None) -> Any:
        """The map's value for `key` (spelled as bytes in raw mode)."""
        return self._wire.get(key.encode() if self.raw else key, default)

    def _text(self, key: str, default: str = "") -> Any:
        """A string field, `default` when absent or empty."""
        return self._get(key) or (default.encode() if self.raw else default)


class RawWireEvent(WireEvent):
    raw = True


def _body(event: WireEvent) -> Any:
    body = event._get("body", b"")
    if type(body) is not bytes:
        return body  # a structured (map) body, as a CloudEvent may carry
    content_type = event.content_type
    if event.raw:
        content_type = content_type.decode("latin-1")
    return decode_body(body, content_type)


def _headers(event: WireEvent) -> Any:
    headers = event._get("headers") or {}
    if event.raw:
        return headers
    return {canonical_header(str(k)): v for k, v in headers.items()}


def _trigger(event: WireEvent) -> Any:
    trigger = event._get("trigger") or {}
    kind, name = (b"kind", b"name") if event.raw else ("kind", "name")
    blank = b"" if event.raw else ""
    return nuclio_sdk.TriggerInfo(trigger.get(kind, blank), trigger.get(name, blank))


def _event_id(event: WireEvent) -> Any:
    return event._text("id") or event._text("", new_request_id())


_FIELDS: dict[str, Callable[[WireEvent], Any]] = {
    "body": _body,
    "content_type": lambda event: event._text("content_type"),
    "trigger": _trigger,
    "fields": lambda event: event._get("fields") or {},
    "headers": _headers,
    "id": _event_id,
    "method": lambda event: event._text("method"),
    "path": lambda event: event._text("path", "/"),
    "size": lambda event: event._get("size", 0),
    "timestamp": lambda event: _timestamp(event._get("timestamp")),
    "url": lambda event: event._text("url"),
    "shard_id": lambda event: event._get("shard_id"),
    "num_shards": lambda event: event._get("num_shards"),
    "type": lambda event: event._get("type"),
    "type_version": lambda event: event._get("type_version"),
    "version": lambda event: event._get("version"),
    "last_in_batch": lambda event: False,
    "offset": lambda event: event._get("offset", 0),
    "topic": lambda event: event._get("topic"),
}
"""Each Event attribute, and how it is read from the processor's map."""


def _timestamp(seconds: Any) -> datetime.datetime:
    """The processor's Unix seconds as an aware UTC datetime (now when absent)."""
    if isinstance(seconds, (int, float)) and seconds > 0:
        return datetime.datetime.fromtimestamp(seconds, _UTC)
    return datetime.datetime.now(_UTC)


def event_id(event: Any) -> str:
    """An event's id as text (raw mode keeps it bytes)."""
    value = event.id
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def response_json(reply: Reply, event: Optional[str] = None) -> bytes:
    """The processor's response object as JSON: a UTF-8 body as text, any other body base64.

    Written by hand rather than by json.dumps: this runs once per event, and a large text
    body that needs no escaping (the common case) is copied rather than scanned by escaping.
    """
    body, encoding = _body_json(reply.body)
    parts = [
        b'{"body": ',
        body,
        b', "body_encoding": "',
        encoding,
        b'", "content_type": ',
        _string(reply.content_type or ""),
        b', "status_code": ',
        str(reply.status).encode(),
        b', "headers": ',
        json.dumps(reply.headers).encode() if reply.headers else b"{}",
    ]
    if event is not None:
        parts += (b', "event_id": ', _string(event))
    parts.append(b"}")
    return b"".join(parts)


_NEEDS_ESCAPE = bytes(range(32)) + b'"\\'


def _body_json(body: bytes) -> tuple[bytes, bytes]:
    """The body as a JSON string, and its encoding on the wire (text or base64)."""
    if body.isascii() and len(body.translate(None, _NEEDS_ESCAPE)) == len(body):
        return b'"' + body + b'"', b"text"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return b'"' + base64.b64encode(body) + b'"', b"base64"
    return encode_basestring(text).encode(), b"text"


def _string(text: str) -> bytes:
    return encode_basestring_ascii(text).encode()


def reply_lines(answer: bytes, duration: float) -> bytes:
    """The `m` (duration) and `r` (response) lines that end one event or batch."""
    return b'm{"duration": %r}\nr%s\n' % (max(duration, MIN_DURATION), answer)


def batch_json(answers: list[bytes]) -> bytes:
    """The response objects of a batch, as one JSON array."""
    return b"[" + b", ".join(answers) + b"]"


def error_line(answer: bytes) -> bytes:
    """An `r` line without `m`: for events that reached no handler."""
    return b"r" + answer + b"\n"

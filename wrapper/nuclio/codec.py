"""The processor's messages in and out: msgpack event maps → Events, Replies → `r` lines.

Facts from Nuclio's protocol (NUCLIO_PROTOCOL.md §4-§5); choices of ours (DESIGN §4):
headers in canonical form, a JSON body decoded only for a JSON content type, an aware UTC
timestamp, missing keys given defaults rather than refused.
"""

from __future__ import annotations

import base64
import datetime
import json
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Callable, Optional, Union

import msgpack
import nuclio_sdk

from wrapper.events import canonical_header, decode_body, new_request_id
from wrapper.reply import JSON, OCTETS, TEXT, Reply

Events = Union[Any, list[Any]]
"""One Event, or a batch: a list of them."""

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

    Most handlers touch two or three of the twenty fields: the id (every call reads it),
    path and method are set at once, the others on first access (then kept, so they can be
    reassigned too).
    """

    BLANK: Any = ""
    """An absent string field ("" here, b"" in raw mode)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._wire = data
        get = data.get
        self.id = get("id") or self.new_id()
        self.path = get("path") or self.BLANK + "/"
        self.method = get("method") or self.BLANK

    @staticmethod
    def new_id() -> Any:
        return new_request_id()

    def __getattr__(self, name: str) -> Any:
        read = _LAZY.get(name)
        if read is None:
            raise AttributeError(name)
        value = read(self, self._wire)
        setattr(self, name, value)
        return value

    def to_json(self) -> str:
        for name in _LAZY:  # every field in vars(self), which nuclio-sdk's to_json reads
            getattr(self, name)
        return str(super().to_json())


class RawWireEvent(WireEvent):
    """Nuclio's raw mode: string values stay bytes (the map's keys are decoded once)."""

    BLANK = b""

    def __init__(self, data: dict[bytes, Any]) -> None:
        super().__init__({key.decode("latin-1"): value for key, value in data.items()})

    @staticmethod
    def new_id() -> Any:
        return new_request_id().encode()


def _body(event: WireEvent, wire: dict[str, Any]) -> Any:
    body = wire.get("body", b"")
    if type(body) is not bytes:
        return body  # a structured (map) body, as a CloudEvent may carry
    content_type = event.content_type
    if type(content_type) is bytes:
        content_type = content_type.decode("latin-1")
    return decode_body(body, content_type)


def _headers(event: WireEvent, wire: dict[str, Any]) -> Any:
    headers = wire.get("headers") or {}
    if event.BLANK == b"":
        return headers
    return {canonical_header(str(k)): v for k, v in headers.items()}


def _trigger(event: WireEvent, wire: dict[str, Any]) -> Any:
    trigger = wire.get("trigger") or {}
    kind = trigger.get("kind", trigger.get(b"kind", event.BLANK))
    return nuclio_sdk.TriggerInfo(kind, trigger.get("name", trigger.get(b"name", event.BLANK)))


def _field(key: str, default: Any = None) -> Callable[[WireEvent, dict[str, Any]], Any]:
    return lambda event, wire: wire.get(key, default)


def _text(key: str) -> Callable[[WireEvent, dict[str, Any]], Any]:
    return lambda event, wire: wire.get(key) or event.BLANK


_LAZY: dict[str, Callable[[WireEvent, dict[str, Any]], Any]] = {
    "body": _body,
    "content_type": _text("content_type"),
    "trigger": _trigger,
    "fields": lambda event, wire: wire.get("fields") or {},
    "headers": _headers,
    "size": _field("size", 0),
    "timestamp": lambda event, wire: _timestamp(wire.get("timestamp")),
    "url": _text("url"),
    "shard_id": _field("shard_id"),
    "num_shards": _field("num_shards"),
    "type": _field("type"),
    "type_version": _field("type_version"),
    "version": _field("version"),
    "last_in_batch": lambda event, wire: False,
    "offset": _field("offset", 0),
    "topic": _field("topic"),
}
"""The Event attributes read on first use, and how each is read from the processor's map."""


def _timestamp(seconds: Any) -> datetime.datetime:
    """The processor's Unix seconds as an aware UTC datetime (now when absent)."""
    if isinstance(seconds, (int, float)) and seconds > 0:
        return datetime.datetime.fromtimestamp(seconds, _UTC)
    return datetime.datetime.now(_UTC)


def event_id(event: Any) -> str:
    """An event's id as text (raw mode keeps it bytes)."""
    value = event.id
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _string(text: str) -> bytes:
    return encode_basestring_ascii(text).encode()


def response_json(reply: Reply, event: Optional[str] = None) -> bytes:
    """The processor's response object as JSON: a UTF-8 body as text, any other body base64.

    Written by hand rather than by json.dumps: this runs once per event, and a large text
    body that needs no escaping (the common case) is copied rather than scanned by escaping.
    """
    body, encoding = _body_json(reply.body)
    headers = json.dumps(reply.headers).encode() if reply.headers else b"{}"
    content_type = _CONTENT_TYPES.get(reply.content_type) or _string(reply.content_type or "")
    extra = b"" if event is None else b', "event_id": ' + _string(event)
    return (
        b'{"body": %s, "body_encoding": "%s", "content_type": %s, "status_code": %d, '
        b'"headers": %s%s}' % (body, encoding, content_type, reply.status, headers, extra)
    )


_CONTENT_TYPES: dict[Optional[str], bytes] = {
    None: b'""',
    **{name: _string(name) for name in (TEXT, OCTETS, JSON)},
}
"""The JSON strings of the commonest content types, made once."""


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


def reply_lines(answer: bytes, nanoseconds: int) -> bytes:
    """The `m` (duration, in seconds) and `r` (response) lines that end one event or batch.

    The duration is written from integer nanoseconds (repr of a float costs more than the
    rest of the line) and is never 0, which the processor would log as an error.
    """
    seconds, rest = divmod(max(nanoseconds, 1), 1_000_000_000)
    return b'm{"duration": %d.%09d}\nr%s\n' % (seconds, rest, answer)


def batch_json(answers: list[bytes]) -> bytes:
    """The response objects of a batch, as one JSON array."""
    return b"[" + b", ".join(answers) + b"]"


def error_line(answer: bytes) -> bytes:
    """An `r` line without `m`: for events that reached no handler."""
    return b"r" + answer + b"\n"

"""The processor's messages in and out: msgpack event maps → Events, Replies → `r` lines.

Facts from Nuclio's protocol (NUCLIO_PROTOCOL.md §4-§5), as Nuclio's wrapper gives them:
header names as the processor sent them, a body decoded only for exactly `application/json`,
a naive UTC timestamp. Choices of ours: missing keys given defaults rather than refused, a
field of the wrong type refused (MalformedEvent).
"""

from __future__ import annotations

import base64
import datetime
import json
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Callable, Optional, Union

import msgpack
import nuclio_sdk

from wrapper.events import decode_body, new_request_id
from wrapper.reply import JSON, NUCLIO_TEXT, OCTETS, TEXT, Reply

Events = Union[Any, list[Any]]
"""One Event, or a batch: a list of them."""

_UTC = datetime.timezone.utc


class MalformedEvent(ValueError):
    """A frame that is not an event map (or a list of them).

    `ids` is set when the frame is a list (a batch): the id of each of its items, "" where
    none can be read, so that each event can be answered (the processor drops a batch
    result without an `event_id`).
    """

    ids: Optional[list[str]] = None


def decode_events(payload: bytes, decode_strings: bool) -> tuple[Events, bool]:
    """The event (or batch) in one frame's payload, and whether it was a batch.

    With `decode_strings` off (the processor's `--decode-event-strings` absent), every
    string stays bytes, keys and values, as Nuclio's raw mode has it.
    """
    try:
        data = msgpack.unpackb(payload, raw=not decode_strings)
    except UnicodeDecodeError as exc:
        error = MalformedEvent(f"a string in the event is not UTF-8 ({exc.reason})")
        error.ids = _batch_ids(_raw_value(payload))
        raise error from None
    except (ValueError, msgpack.UnpackException) as exc:
        raise MalformedEvent(f"the frame is not one msgpack value ({exc})") from None
    kind = WireEvent if decode_strings else RawWireEvent
    if type(data) is dict:
        return kind(data), False
    try:
        if isinstance(data, list) and all(isinstance(item, dict) for item in data):
            return [kind(item) for item in data], True
        raise MalformedEvent(f"expected an event map or a list of them, got {type(data).__name__}")
    except MalformedEvent as exc:
        exc.ids = _batch_ids(data)
        raise


def _raw_value(payload: bytes) -> Any:
    """The frame's value with strings left bytes (None if even that fails)."""
    try:
        return msgpack.unpackb(payload, raw=True)
    except (ValueError, msgpack.UnpackException):
        return None


def _batch_ids(data: Any) -> Optional[list[str]]:
    """The id of each item of a list frame ("" for an item that is no map, or whose id is
    of no type an id may have); None when the frame is not a list."""
    if not isinstance(data, list):
        return None
    ids = []
    for item in data:
        value = item.get("id", item.get(b"id")) if isinstance(item, dict) else None
        ids.append(id_text(value) if type(value) in (str, bytes, int) else "")
    return ids


def _field_types(string: type) -> dict[str, tuple[type, ...]]:
    """The types each known key of an event map may hold (`string`: str, or bytes in raw
    mode); nil is always allowed, as an absent value."""
    text = (string, _NIL)
    number = (int, _NIL)
    return {
        **dict.fromkeys(_STRING_FIELDS, text),
        **dict.fromkeys(("size", "shard_id", "num_shards", "version", "offset"), number),
        "body": (bytes, string, dict, _NIL),
        "id": (string, int, _NIL),
        "headers": (dict, _NIL),
        "fields": (dict, _NIL),
        "trigger": (dict, _NIL),
        "timestamp": (int, float, _NIL),
    }


_NIL = type(None)
_STRING_FIELDS = (
    "content_type",
    "content-type",
    "method",
    "path",
    "url",
    "type",
    "type_version",
    "topic",
)


def _check(data: dict[str, Any], types: dict[str, tuple[type, ...]]) -> None:
    """MalformedEvent naming the first field of the map whose value has the wrong type."""
    for key, value in data.items():
        allowed = types.get(key)
        if allowed is not None and type(value) not in allowed:
            names = " or ".join(t.__name__ for t in allowed if t is not _NIL)
            raise MalformedEvent(f"field {key!r}: expected {names}, got {type(value).__name__}")


Reader = Callable[["WireEvent", dict[str, Any]], Any]


class _Lazy:
    """An Event field read from the processor's map on first use, then kept on the event
    (a plain attribute from then on, so a handler can reassign it too).

    `read(event, wire)` computes the value; without it the map's value under the field's
    name is taken, `default` when absent (for a string field: "", or b"" in raw mode).
    """

    __slots__ = ("default", "name", "read")

    def __init__(self, read: Optional[Reader] = None, default: Any = None) -> None:
        self.read = read
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, event: Optional[WireEvent], owner: Optional[type] = None) -> Any:
        if event is None:
            return self
        wire = event._wire
        if self.read is not None:
            value = self.read(event, wire)
        elif self.default is _TEXT:
            value = wire.get(self.name) or event.BLANK
        else:
            value = wire.get(self.name, self.default)
        event.__dict__[self.name] = value
        return value


_TEXT: Any = object()
"""The default of a string field: "" (b"" in raw mode) when absent or empty."""


def _body(body: Any, content_type: Any) -> Any:
    """The event's body: JSON decoded for a JSON content type (text or raw-mode bytes)."""
    if type(body) is not bytes or not body:
        return body  # a structured (map) body, as a CloudEvent may carry
    if type(content_type) is bytes:
        content_type = content_type.decode("latin-1")
    return decode_body(body, content_type)


def _trigger(event: WireEvent, wire: dict[str, Any]) -> Any:
    trigger = wire.get("trigger") or {}
    kind = trigger.get("kind", trigger.get(b"kind", event.BLANK))
    return nuclio_sdk.TriggerInfo(kind, trigger.get("name", trigger.get(b"name", event.BLANK)))


class WireEvent(nuclio_sdk.Event):  # type: ignore[misc]
    """A nuclio-sdk Event whose fields are read from the processor's map when first used.

    Most handlers touch a few of the twenty fields: the id (every call reads it), path,
    method, content type and body are set at once, the others on first access.
    """

    BLANK: Any = ""
    """An absent string field ("" here, b"" in raw mode)."""
    JSON: Any = "json"
    """In every JSON content type (only those bodies are decoded)."""
    FIELD_TYPES = _field_types(str)

    trigger = _Lazy(_trigger)
    fields = _Lazy(lambda event, wire: wire.get("fields") or {})
    headers = _Lazy(lambda event, wire: wire.get("headers") or {})
    size = _Lazy(default=0)
    timestamp = _Lazy(lambda event, wire: _timestamp(wire.get("timestamp")))
    url = _Lazy(default=_TEXT)
    shard_id = _Lazy()
    num_shards = _Lazy()
    type = _Lazy()
    type_version = _Lazy()
    version = _Lazy()
    last_in_batch = _Lazy(lambda event, wire: False)
    offset = _Lazy(default=0)
    topic = _Lazy()

    def __init__(self, data: dict[str, Any]) -> None:
        _check(data, self.FIELD_TYPES)
        self._wire = data
        get = data.get
        self.id = get("id") or self.new_id()
        self.path = get("path") or self.BLANK + "/"
        self.method = get("method") or self.BLANK
        content_type = self.content_type = get("content_type") or self.BLANK
        body = get("body", b"")
        self.body = _body(body, content_type) if self.JSON in content_type.lower() else body

    @staticmethod
    def new_id() -> Any:
        return new_request_id()

    def to_json(self) -> str:
        for name in _LAZY_FIELDS:  # every field in vars(self), which nuclio-sdk's to_json reads
            getattr(self, name)
        return str(super().to_json())


_LAZY_FIELDS = tuple(name for name, value in vars(WireEvent).items() if isinstance(value, _Lazy))


class RawWireEvent(WireEvent):
    """Nuclio's raw mode: string values stay bytes (the map's keys are decoded once)."""

    BLANK = b""
    JSON = b"json"
    FIELD_TYPES = _field_types(bytes)

    def __init__(self, data: dict[bytes, Any]) -> None:
        # every key is bytes: msgpack's strict_map_key refuses any other than str and bin
        super().__init__({key.decode("latin-1"): value for key, value in data.items()})

    @staticmethod
    def new_id() -> Any:
        return new_request_id().encode()


def _timestamp(seconds: Any) -> datetime.datetime:
    """The processor's Unix seconds as a naive UTC datetime, as Nuclio's wrapper gives (its
    `utcfromtimestamp`); now when absent."""
    if isinstance(seconds, (int, float)) and seconds > 0:
        return datetime.datetime.fromtimestamp(seconds, _UTC).replace(tzinfo=None)
    return datetime.datetime.now(_UTC).replace(tzinfo=None)


def event_id(event: Any) -> str:
    """An event's id as text (raw mode keeps it bytes); `id_text`, inlined as it runs per event."""
    value = event.id
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def id_text(value: Any) -> str:
    """An id as text: raw mode's bytes decoded (never `"b'…'"`), anything else by str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _string(text: str) -> bytes:
    return encode_basestring_ascii(text).encode()


_RESPONSE = (
    b'{"body": "%s", "body_encoding": "%s", "content_type": %s, "status_code": %d, "headers": %s%s}'
)
_LINES = b'm{"duration": %d.%09d}\nr' + _RESPONSE + b"\n"


def response_json(reply: Reply, event: Optional[str] = None) -> bytes:
    """The processor's response object as JSON: a UTF-8 body as text, any other body base64.

    Written by hand rather than by json.dumps: this runs once per event, and a large text
    body that needs no escaping (the common case) is copied rather than scanned by escaping.
    """
    return _RESPONSE % _response_fields(reply, event)


def event_lines(reply: Reply, nanoseconds: int) -> bytes:
    """The `m` (duration, in seconds) and `r` (response) lines that end one event; only `r`
    when the handler raised, as Nuclio's wrapper (NUCLIO_PROTOCOL.md §5).

    The duration is written from integer nanoseconds (repr of a float costs more than the
    rest of the line) and is never 0, which the processor would log as an error.
    """
    if reply.failed:
        return error_line(response_json(reply))
    seconds, rest = divmod(max(nanoseconds, 1), 1_000_000_000)
    return _LINES % (seconds, rest, *_response_fields(reply, None))


def reply_lines(answer: bytes, nanoseconds: int) -> bytes:
    """The `m` and `r` lines that end a batch, whose response objects are in `answer`."""
    seconds, rest = divmod(max(nanoseconds, 1), 1_000_000_000)
    return b'm{"duration": %d.%09d}\nr%s\n' % (seconds, rest, answer)


def _response_fields(reply: Reply, event: Optional[str]) -> tuple[Any, ...]:
    body = reply.body
    encoding = b"text"
    if not body.isascii() or len(body.translate(None, _NEEDS_ESCAPE)) != len(body):
        body, encoding = _escaped(body)
    headers = json.dumps(reply.typed_headers or reply.headers).encode() if reply.headers else b"{}"
    content_type = _CONTENT_TYPES.get(reply.content_type) or _string(reply.content_type or "")
    extra = b"" if event is None else b', "event_id": ' + _string(event)
    return body, encoding, content_type, reply.status, headers, extra


_CONTENT_TYPES: dict[Optional[str], bytes] = {
    None: b'""',
    **{name: _string(name) for name in (TEXT, OCTETS, JSON, NUCLIO_TEXT)},
}
"""The JSON strings of the commonest content types, made once."""


_NEEDS_ESCAPE = bytes(range(32)) + b'"\\'
"""The ASCII bytes a JSON string cannot hold as they are."""


def _escaped(body: bytes) -> tuple[bytes, bytes]:
    """A body that cannot be copied into a JSON string as it is: escaped UTF-8 text, or
    base64; without the quotes, and its encoding on the wire."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return base64.b64encode(body), b"base64"
    return encode_basestring(text)[1:-1].encode(), b"text"


def batch_json(answers: list[bytes]) -> bytes:
    """The response objects of a batch, as one JSON array."""
    return b"[" + b", ".join(answers) + b"]"


def error_line(answer: bytes) -> bytes:
    """An `r` line without `m`: for events that reached no handler, or whose handler raised."""
    return b"r" + answer + b"\n"

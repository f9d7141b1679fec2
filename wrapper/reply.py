"""Turn what a handler returns (or raises) into a reply: both tables of DESIGN §4.

fn-wrapper's own (`to_reply`, `error_reply`), for serve, invoke and job; and Nuclio's
(`nuclio_reply`, `nuclio_error_reply`: NUCLIO_PROTOCOL.md §6-§7), for the nuclio door, whose
clients must see what Nuclio's wrapper gives them. A door picks one `Conversion`.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
import traceback
import types
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import PurePath
from typing import Any, Callable, NamedTuple, Optional, Union

import nuclio_sdk
import nuclio_sdk.json_encoder

from wrapper.errors import HTTPError

TEXT = "text/plain; charset=utf-8"
NUCLIO_TEXT = "text/plain"
OCTETS = "application/octet-stream"
JSON = "application/json"
NDJSON = "application/x-ndjson"

Stream = Union[Iterator[Any], AsyncIterator[Any]]


class Reply:
    """What a door sends back: status, headers, content type and body (or a stream of chunks).

    `headers` are text (as HTTP has them); `typed_headers`, when set, are the same with the
    bool and int values the handler gave kept typed, for the nuclio door, whose headers are
    JSON values (a stream trigger honours `x-nuclio-stream-no-ack: true`, not "True").
    `failed` marks the reply to a handler call that raised.
    """

    __slots__ = ("body", "content_type", "failed", "headers", "status", "stream", "typed_headers")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        stream: Optional[Stream] = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else {}
        self.stream = stream
        self.typed_headers: Optional[dict[str, Union[str, int]]] = None
        self.failed = False

    def __repr__(self) -> str:
        kind = "stream" if self.stream is not None else f"{len(self.body)} bytes"
        return f"Reply({self.status}, {self.content_type!r}, {kind})"


def to_reply(value: Any, status: int = 200, whole: bool = True) -> Reply:
    """Convert a handler's return value to a Reply: the one place the table is written.

    The commonest results come first, by exact type. `status` and `whole` are the table's own
    recursion: the body of a `(status, body)` or of a Response is converted with that status
    and is never itself a status tuple or a Response (then it is text, as any other object).
    An awaitable is no value yet: Unawaited, for the caller to await it (PreparedHandler does).
    """
    kind = type(value)
    if kind is str:
        return Reply(status, value.encode(), TEXT)
    if kind is bytes:
        return Reply(status, value, OCTETS)
    if kind is dict or kind is list:
        return Reply(status, dump_json(value), JSON)
    if value is None:
        return Reply(status)
    if whole:
        if kind is tuple and len(value) == 2 and _is_status(value[0]):
            return to_reply(value[1], value[0], whole=False)
        if isinstance(value, nuclio_sdk.Response):
            return _from_nuclio_response(value)
    if isinstance(value, str):
        return Reply(status, value.encode(), TEXT)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Reply(status, bytes(value), OCTETS)
    if isinstance(value, (dict, list)):
        return Reply(status, dump_json(value), JSON)
    if isinstance(value, (types.GeneratorType, types.AsyncGeneratorType)):
        return Reply(status, stream=value)
    if whole and isinstance(value, Awaitable):
        raise Unawaited(value)
    return Reply(status, str(value).encode(), TEXT)


class Unawaited(TypeError):
    """A handler returned an awaitable (an async function behind a plain decorator): its
    value is what to convert, once awaited; a door that cannot await it answers 500."""

    def __init__(self, awaitable: Any) -> None:
        super().__init__(
            f"the handler returned a {type(awaitable).__name__} that was not awaited: "
            "declare it `async def`, or keep functools.wraps on its decorator"
        )
        self.awaitable = awaitable


class BadResponse(ValueError):
    """A status, content type or headers given by the handler that no reply can carry."""


def _from_nuclio_response(response: Any) -> Reply:
    status = _status(response.status_code, "Response.status_code")
    reply = to_reply(response.body, status, whole=False)
    given = _content_type(response.content_type, "Response.content_type")
    if given and not (given == "text/plain" and reply.content_type == JSON):
        reply.content_type = given  # Response's default text/plain does not relabel JSON
    _copy_headers(response, reply)
    return reply


def _copy_headers(response: Any, reply: Reply) -> None:
    """A Response's headers onto `reply`: as text, and typed where a value is a bool or int."""
    headers = response.headers or {}
    if not isinstance(headers, dict):
        raise BadResponse(
            f"Response.headers: expected a dict of names to values, got {type(headers).__name__}"
        )
    reply.headers = {str(k): str(v) for k, v in headers.items()}
    if any(type(v) is bool or type(v) is int for v in headers.values()):
        reply.typed_headers = {
            str(k): v if type(v) is bool or type(v) is int else str(v) for k, v in headers.items()
        }


def _is_status(value: Any) -> bool:
    return type(value) is int and 100 <= value <= 599


def _status(value: Any, field: str) -> int:
    """An HTTP status given by the handler (an int, or its digits as text)."""
    status = int(value) if type(value) is str and value.isdigit() else value
    if not _is_status(status):
        raise BadResponse(f"{field}: {value!r} is not an HTTP status (an int from 100 to 599)")
    return int(status)


def _content_type(value: Any, field: str) -> Optional[str]:
    """A content type given by the handler: text, or None for none."""
    if value is not None and not isinstance(value, str):
        raise BadResponse(f"{field}: expected a str, got {type(value).__name__}")
    return value or None


SERVER_HEADERS = frozenset(
    (
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)
"""Headers that frame a message or belong to one connection (RFC 9112 §6, RFC 9110 §7.6.1):
in fn-wrapper's doors they are the server's, and a handler's are dropped."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What no header value may hold: the control characters (a tab is allowed, as HTTP allows)."""

_PLAIN_TYPES = frozenset((TEXT, OCTETS, JSON, NDJSON))


def for_http(reply: Reply) -> Reply:
    """`reply` as fn-wrapper's doors send it, valid HTTP/1.1 whatever the handler gave (DESIGN
    §4): a handler's framing headers dropped, its Content-Type header the reply's content
    type, no body on 204 and 304. BadResponse for what no reply can carry: a status outside
    200-599 (a 1xx is no final reply), a header name that is not a token, a control character
    in a header value or the content type. (HEAD is the server's: the length is sent, the body
    not.) The nuclio door does not use this: the processor frames its own replies."""
    status = reply.status
    if not 200 <= status <= 599:
        raise BadResponse(
            f"status {status!r}: a reply's status is from 200 to 599"
            + (" (a 1xx status is not a final reply)" if 100 <= status <= 199 else "")
        )
    if reply.headers:
        reply.headers = _http_headers(reply)
    given = reply.content_type
    if given is not None and given not in _PLAIN_TYPES and _CONTROL.search(given):
        raise BadResponse(f"content type {_shown(given)}: holds a control character")
    if status == 204 or status == 304:
        reply.body, reply.stream = b"", None
    return reply


def _http_headers(reply: Reply) -> dict[str, str]:
    """The handler's headers without the server's; a Content-Type moves to the content type."""
    headers = {}
    for name, value in reply.headers.items():
        if not _TOKEN.fullmatch(name):
            raise BadResponse(f"header name {_shown(name)}: not an HTTP token")
        if _CONTROL.search(value):
            raise BadResponse(f"header {name}: value {_shown(value)} holds a control character")
        lower = name.lower()
        if lower == "content-type":
            reply.content_type = value or None
        elif lower not in SERVER_HEADERS:
            headers[name] = value
    return headers


def _shown(text: str, limit: int = 100) -> str:
    """`text` as a log may show it: repr, cut to `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def is_deliberate(exc: BaseException) -> bool:
    """An exception raised to answer with a chosen status (HTTPError, ExceptionWithResponse)."""
    return isinstance(exc, (HTTPError, nuclio_sdk.ExceptionWithResponse))


def error_reply(exc: BaseException, request_id: str, debug: bool = False) -> Reply:
    """The reply for a handler that raised: its own status for HTTPError-like errors, else 500.

    BadResponse when an HTTPError-like error's status or content type cannot be sent.
    """
    if isinstance(exc, HTTPError):
        return _status_reply(
            _status(exc.status, "HTTPError.status"),
            exc.body,
            _content_type(exc.content_type, "HTTPError.content_type"),
        )
    if isinstance(exc, nuclio_sdk.ExceptionWithResponse):
        return _status_reply(
            _status(exc.status_code, "ExceptionWithResponse.status_code"),
            exc.body,
            _content_type(exc.content_type, "ExceptionWithResponse.content_type"),
        )
    body: dict[str, Any] = {"error": "handler failed", "request_id": request_id}
    if debug:
        from wrapper.secrets import Redaction

        redaction = Redaction.from_environment()
        body["type"] = type(exc).__name__
        body["message"] = redaction.text(str(exc))
        shown = traceback.format_exception(type(exc), exc, exc.__traceback__)
        body["traceback"] = redaction.text("".join(shown))
    return Reply(500, dump_json(body), JSON)


# --- Nuclio's table, for the nuclio door ------------------------------------------------------


def nuclio_reply(value: Any) -> Reply:
    """What Nuclio's wrapper answers one event with (NUCLIO_PROTOCOL.md §6): a list is a
    batch's answers, of which the processor keeps the first. An empty one, on which Nuclio's
    processor fails, is an empty text reply."""
    if isinstance(value, list):
        return nuclio_output(value[0]) if value else Reply(200, b"", NUCLIO_TEXT)
    return nuclio_output(value)


def nuclio_output(value: Any) -> Reply:
    """One handler output by nuclio-sdk's `Response.from_entrypoint_output`: text as text/plain,
    `(status, body)`, a dict or list as JSON in the SDK encoder's spacing (NaN as "NaN", an
    object it cannot encode as its repr), a Response as given (a dict body as JSON), anything
    else as the text of `str()` (None is "None"), bytes as they are, labelled text/plain."""
    if isinstance(value, str):
        return Reply(200, _utf8(value), NUCLIO_TEXT)
    if isinstance(value, bytes):
        return Reply(200, value, NUCLIO_TEXT)
    if isinstance(value, tuple) and len(value) == 2:
        status, body = _status(value[0], "the returned (status, body)"), value[1]
        if isinstance(body, str):
            return Reply(status, _utf8(body), NUCLIO_TEXT)
        return Reply(status, _utf8(nuclio_json(body)), JSON)
    if isinstance(value, (dict, list)):
        return Reply(200, _utf8(nuclio_json(value)), JSON)
    if isinstance(value, nuclio_sdk.Response):
        return _nuclio_response(value)
    if isinstance(value, (types.GeneratorType, types.AsyncGeneratorType)):
        return Reply(200, stream=value)
    if isinstance(value, Awaitable):
        raise Unawaited(value)
    return Reply(200, _utf8(str(value)), NUCLIO_TEXT)


def _nuclio_response(response: Any) -> Reply:
    status = _status(response.status_code, "Response.status_code")
    body = response.body
    if isinstance(body, dict):
        reply = Reply(status, json.dumps(body).encode(), JSON)
    else:
        content_type = _content_type(response.content_type, "Response.content_type")
        reply = Reply(status, body if isinstance(body, bytes) else _utf8(str(body)), content_type)
    _copy_headers(response, reply)
    if reply.headers:  # JSON values, as the SDK encoder writes them (0.5 stays a number)
        typed = {str(name): value for name, value in response.headers.items()}
        reply.typed_headers = json.loads(nuclio_json(typed))
    return reply


_SDK_ENCODER = nuclio_sdk.json_encoder.Encoder()


def nuclio_json(value: Any) -> str:
    """`value` as nuclio-sdk's encoder writes it: json.dumps's spacing (C-fast when it can),
    else the encoder itself (NaN and infinities as strings, other objects by their repr)."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return str(_SDK_ENCODER.encode(value))


def _utf8(text: str) -> bytes:
    """Text as the processor gets it: UTF-8, a lone surrogate as U+FFFD (its JSON decoder's)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", "\ufffd", text).encode()


def nuclio_error_reply(exc: BaseException, request_id: str, debug: bool = False) -> Reply:
    """A handler error as the nuclio door answers it: 500 text/plain, as Nuclio's wrapper; its
    body a fixed text with the request id (the exception may hold secrets: it is logged), or
    under `debug` Nuclio's own body (`Exception caught in handler - "<exc>": <traceback>`)."""
    if not debug:
        text = (
            f"Exception caught in handler (request id {request_id}): the exception and its "
            "traceback are in the function's log"
        )
        return Reply(500, text.encode(), NUCLIO_TEXT)
    from wrapper.secrets import Redaction

    shown = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = f'Exception caught in handler - "{exc}": {shown}'
    return Reply(500, _utf8(Redaction.from_environment().text(text)), NUCLIO_TEXT)


class Conversion(NamedTuple):
    """A door's table: a return value's reply, an error's reply, and which errors are
    deliberate answers (their own status) rather than failures."""

    reply: Callable[[Any], Reply]
    output: Callable[[Any], Reply]
    """One result of a batch (no list rule)."""
    error: Callable[[BaseException, str, bool], Reply]
    deliberate: Callable[[BaseException], bool]


def _never(exc: BaseException) -> bool:
    return False


FN_WRAPPER = Conversion(to_reply, to_reply, error_reply, is_deliberate)
NUCLIO = Conversion(nuclio_reply, nuclio_output, nuclio_error_reply, _never)
"""Nuclio's wrapper answers ExceptionWithResponse as any exception: 500 (§12)."""


def _status_reply(status: int, body: Any, content_type: Optional[str]) -> Reply:
    reply = to_reply(body, status, whole=False)
    if content_type:
        reply.content_type = content_type
    return reply


def encode_chunk(chunk: Any) -> bytes:
    """One streamed chunk as bytes: text as UTF-8, JSON values as one JSON line."""
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    if isinstance(chunk, (dict, list)):
        return dump_json(chunk) + b"\n"
    return b"" if chunk is None else str(chunk).encode()


def chunk_content_type(chunk: Any) -> Optional[str]:
    """The content type a stream gets from its first chunk (JSON values make NDJSON)."""
    if isinstance(chunk, str):
        return TEXT
    if isinstance(chunk, (dict, list)):
        return NDJSON
    return OCTETS if isinstance(chunk, (bytes, bytearray, memoryview)) else TEXT


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities become null so the output is always valid JSON."""
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
        ).encode()
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return json.dumps(
            _finite(value),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            default=_json_default,
        ).encode()


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities replaced by None, through dicts, lists and sets."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return _finite(_json_default(value))
    return value


def _json_default(value: Any) -> Any:
    """JSON for common non-JSON types; anything else is a TypeError naming the type."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    import decimal  # imported on first use: a function that never returns one never pays
    import uuid

    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"a {type(value).__name__} is not JSON serialisable")


def collect(stream: Iterator[Any]) -> Reply:
    """A whole reply from a generator's chunks (for doors that cannot stream)."""
    chunks = [chunk for chunk in stream if chunk is not None]
    return _joined(chunks)


async def collect_async(stream: AsyncIterator[Any]) -> Reply:
    """A whole reply from an async generator's chunks."""
    chunks = [chunk async for chunk in stream if chunk is not None]
    return _joined(chunks)


def _joined(chunks: list[Any]) -> Reply:
    content_type = chunk_content_type(chunks[0]) if chunks else None
    return Reply(200, b"".join(encode_chunk(c) for c in chunks), content_type)

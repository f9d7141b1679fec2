"""wrapper.reply: DESIGN §4's conversion table, JSON encoding, streams and error replies."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import math
import re
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import nuclio_sdk
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wrapper
from wrapper.reply import (
    BadResponse,
    Reply,
    Unawaited,
    chunk_content_type,
    collect,
    collect_async,
    dump_json,
    encode_chunk,
    error_reply,
    for_http,
    to_reply,
)

TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
JSON = "application/json"
NDJSON = "application/x-ndjson"


def strict_loads(data: bytes) -> Any:
    """json.loads that refuses NaN / Infinity, i.e. only accepts standard JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


class Custom:
    def __str__(self) -> str:
        return "custom-object"


# --- the table: plain return values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "content_type", "body"),
    [
        ("hello", TEXT, b"hello"),
        ("", TEXT, b""),
        ("héllo ✓", TEXT, "héllo ✓".encode()),
        (b"\x00\xff raw", OCTETS, b"\x00\xff raw"),
        (b"", OCTETS, b""),
        (bytearray(b"\x01\x02"), OCTETS, b"\x01\x02"),
        (memoryview(b"view"), OCTETS, b"view"),
        ({"a": 1, "b": [1, 2]}, JSON, b'{"a":1,"b":[1,2]}'),
        ({}, JSON, b"{}"),
        ([1, "x", None, True], JSON, b'[1,"x",null,true]'),
        ([], JSON, b"[]"),
        ({"name": "Zoë", "sym": "✓"}, JSON, '{"name":"Zoë","sym":"✓"}'.encode()),
        (None, None, b""),
        (42, TEXT, b"42"),
        (3.5, TEXT, b"3.5"),
        (True, TEXT, b"True"),
        (Custom(), TEXT, b"custom-object"),
        (decimal.Decimal("1.10"), TEXT, b"1.10"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_plain_values_follow_the_table(value: Any, content_type: Any, body: bytes) -> None:
    reply = to_reply(value)
    assert isinstance(reply, Reply)
    assert reply.status == 200
    assert reply.content_type == content_type
    assert reply.body == body
    assert isinstance(reply.body, bytes)
    assert reply.stream is None
    assert reply.headers == {}


def test_json_is_compact_utf8_and_round_trips() -> None:
    value = {"k": "clé €", "nested": {"list": [1, 2.5, None]}}
    reply = to_reply(value)
    assert b" " not in reply.body.replace("clé €".encode(), b"")
    assert "clé €".encode() in reply.body  # not \u escaped
    assert strict_loads(reply.body) == value


def test_subclasses_of_str_dict_and_list_are_converted_like_their_base() -> None:
    class S(str):
        pass

    class D(dict):  # type: ignore[type-arg]
        pass

    class L(list):  # type: ignore[type-arg]
        pass

    assert (to_reply(S("x")).content_type, to_reply(S("x")).body) == (TEXT, b"x")
    assert (to_reply(D(a=1)).content_type, to_reply(D(a=1)).body) == (JSON, b'{"a":1}')
    assert (to_reply(L([1])).content_type, to_reply(L([1])).body) == (JSON, b"[1]")


# --- (status, body) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ((201, "created"), 201, TEXT, b"created"),
        ((404, b"\x00"), 404, OCTETS, b"\x00"),
        ((202, bytearray(b"ba")), 202, OCTETS, b"ba"),
        ((400, {"error": "bad"}), 400, JSON, b'{"error":"bad"}'),
        ((207, [1, 2]), 207, JSON, b"[1,2]"),
        ((204, None), 204, None, b""),
        ((500, 7), 500, TEXT, b"7"),
        ((100, "continue"), 100, TEXT, b"continue"),
        ((599, "edge"), 599, TEXT, b"edge"),
    ],
)
def test_status_body_tuples(value: Any, status: int, content_type: Any, body: bytes) -> None:
    reply = to_reply(value)
    assert (reply.status, reply.content_type, reply.body) == (status, content_type, body)


@pytest.mark.parametrize(
    "value",
    [
        ("a", "b"),
        (99, "too low"),
        (600, "too high"),
        (True, "bool is not a status"),
        (200.0, "float is not a status"),
        ("200", "str is not a status"),
        (200, "x", "three items"),
        (200,),
    ],
    ids=repr,
)
def test_tuples_that_are_not_status_body_are_text(value: tuple[Any, ...]) -> None:
    reply = to_reply(value)
    assert reply.status == 200
    assert reply.content_type == TEXT
    assert reply.body == str(value).encode()


# --- nuclio_sdk.Response --------------------------------------------------------------------


def test_response_with_everything_given() -> None:
    response = nuclio_sdk.Response(
        headers={"X-Count": 5, "X-Flag": True, "X-Name": "n"},
        body=b"\x89PNG",
        content_type="image/png",
        status_code=201,
    )
    reply = to_reply(response)
    assert reply.status == 201
    assert reply.content_type == "image/png"
    assert reply.body == b"\x89PNG"
    assert reply.headers == {"X-Count": "5", "X-Flag": "True", "X-Name": "n"}
    assert all(type(v) is str for v in reply.headers.values())  # as HTTP sends them
    assert reply.typed_headers == {"X-Count": 5, "X-Flag": True, "X-Name": "n"}  # the nuclio door


def test_response_with_text_headers_only_has_no_typed_headers() -> None:
    reply = to_reply(nuclio_sdk.Response(body="x", headers={"X-A": "1", "X-R": 0.5}))
    assert reply.headers == {"X-A": "1", "X-R": "0.5"}
    assert reply.typed_headers is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status_code": "418x"}, "Response.status_code: '418x' is not an HTTP status"),
        ({"status_code": 600}, "Response.status_code: 600 is not an HTTP status"),
        ({"status_code": None}, "Response.status_code: None is not an HTTP status"),
        ({"content_type": b"text/plain"}, "Response.content_type: expected a str, got bytes"),
        ({"headers": "X-A: 1"}, "Response.headers: expected a dict of names to values, got str"),
    ],
)
def test_response_fields_that_cannot_be_sent_name_the_field(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadResponse, match=f"^{re.escape(message)}"):
        to_reply(nuclio_sdk.Response(body="x", **fields))


@pytest.mark.parametrize(
    ("body", "content_type", "expected_type", "expected_body"),
    [
        # the default text/plain of Response does not relabel a JSON body
        ({"a": 1}, None, JSON, b'{"a":1}'),
        ([1, 2], None, JSON, b"[1,2]"),
        # an explicit content type is kept
        ({"a": 1}, "application/vnd.api+json", "application/vnd.api+json", b'{"a":1}'),
        ("<b>hi</b>", "text/html", "text/html", b"<b>hi</b>"),
        (b"raw", "application/pdf", "application/pdf", b"raw"),
        ("plain", None, "text/plain", b"plain"),
        (12, None, "text/plain", b"12"),
        (None, None, "text/plain", b""),
        # judgment call: Response's default text/plain is indistinguishable from an explicit one
        (b"bytes", None, "text/plain", b"bytes"),
    ],
)
def test_response_body_kinds(
    body: Any, content_type: Any, expected_type: str, expected_body: bytes
) -> None:
    reply = to_reply(nuclio_sdk.Response(body=body, content_type=content_type, status_code=202))
    assert reply.status == 202
    assert reply.content_type == expected_type
    assert reply.body == expected_body
    assert reply.headers == {}


def test_response_status_code_given_as_text_becomes_int() -> None:
    reply = to_reply(nuclio_sdk.Response(body="x", status_code="418"))
    assert reply.status == 418


def test_response_with_a_generator_body_streams() -> None:
    def chunks() -> Any:
        yield "a"

    gen = chunks()
    reply = to_reply(nuclio_sdk.Response(body=gen, status_code=206, headers={"X-A": 1}))
    assert reply.stream is gen
    assert reply.status == 206
    assert reply.headers == {"X-A": "1"}


# --- streams --------------------------------------------------------------------------------


def test_generator_becomes_a_stream() -> None:
    def chunks() -> Any:
        yield "a"
        yield "b"

    gen = chunks()
    reply = to_reply(gen)
    assert reply.stream is gen
    assert reply.status == 200
    assert reply.body == b""


def test_async_generator_becomes_a_stream() -> None:
    async def chunks() -> Any:
        yield {"a": 1}

    gen = chunks()
    close = gen.aclose
    reply = to_reply(gen)
    assert reply.stream is gen
    assert reply.status == 200
    asyncio.run(close())


def test_status_with_generator_streams_with_that_status() -> None:
    gen = (c for c in ["x"])
    reply = to_reply((201, gen))
    assert reply.stream is gen
    assert reply.status == 201


@pytest.mark.parametrize(
    ("chunks", "content_type", "body"),
    [
        (["a", "b", "ç"], TEXT, "abç".encode()),
        ([b"\x00", bytearray(b"\x01"), memoryview(b"\x02")], OCTETS, b"\x00\x01\x02"),
        ([{"n": 1}, [2], {"n": "é"}], NDJSON, '{"n":1}\n[2]\n{"n":"é"}\n'.encode()),
        ([None, {"n": 1}, None], NDJSON, b'{"n":1}\n'),  # None chunks are skipped
        ([1, 2.5], TEXT, b"12.5"),
        (["text ", {"then": "json"}], TEXT, b'text {"then":"json"}\n'),  # first chunk decides
        ([], None, b""),
        ([None], None, b""),
    ],
)
def test_collect_joins_chunks_first_chunk_chooses_type(
    chunks: list[Any], content_type: Any, body: bytes
) -> None:
    reply = collect(iter(chunks))
    assert (reply.status, reply.content_type, reply.body) == (200, content_type, body)
    assert reply.stream is None

    async def agen() -> Any:
        for chunk in chunks:
            yield chunk

    areply = asyncio.run(collect_async(agen()))
    assert (areply.status, areply.content_type, areply.body) == (200, content_type, body)


def test_ndjson_lines_each_parse() -> None:
    values = [{"i": i, "x": float("nan") if i == 1 else i} for i in range(3)]
    body = collect(iter(values)).body
    lines = body.split(b"\n")
    assert lines[-1] == b""
    assert [strict_loads(line) for line in lines[:-1]] == [
        {"i": 0, "x": 0},
        {"i": 1, "x": None},
        {"i": 2, "x": 2},
    ]


@pytest.mark.parametrize(
    ("chunk", "encoded", "content_type"),
    [
        ("é", "é".encode(), TEXT),
        (b"b", b"b", OCTETS),
        (bytearray(b"ba"), b"ba", OCTETS),
        (memoryview(b"mv"), b"mv", OCTETS),
        ({"a": 1}, b'{"a":1}\n', NDJSON),
        ([1], b"[1]\n", NDJSON),
        (None, b"", TEXT),
        (7, b"7", TEXT),
        (Custom(), b"custom-object", TEXT),
    ],
)
def test_encode_chunk_and_chunk_content_type(chunk: Any, encoded: bytes, content_type: str) -> None:
    assert encode_chunk(chunk) == encoded
    assert chunk_content_type(chunk) == content_type


# --- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (float("nan"), None),
        ([float("inf"), float("-inf"), 1.5], [None, None, 1.5]),
        ({"a": {"b": [float("nan")]}}, {"a": {"b": [None]}}),
        ({"t": (1, float("inf"))}, {"t": [1, None]}),
        ({"ok": 1.0}, {"ok": 1.0}),
    ],
)
def test_nan_and_infinities_become_null(value: Any, expected: Any) -> None:
    assert strict_loads(dump_json(value)) == expected


def test_nan_inside_a_set_becomes_null() -> None:
    """dump_json's docstring: NaN and infinities become null so the output is always valid JSON."""
    data = dump_json({"s": {float("nan")}, "f": frozenset([float("inf")])})
    assert strict_loads(data) == {"s": [None], "f": [None]}


def test_nan_in_a_reply_body_is_valid_json() -> None:
    reply = to_reply({"score": float("nan")})
    assert reply.content_type == JSON
    assert strict_loads(reply.body) == {"score": None}


def test_common_non_json_types() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=2))
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "dt": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz),
        "naive": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000),
        "date": datetime.date(2024, 1, 2),
        "time": datetime.time(3, 4, 5),
        "uuid": ident,
        "dec": decimal.Decimal("1.10"),
        "path": Path("/data/x.csv"),
        "pure": PurePosixPath("a/b"),
        "set": {3, 1, 2},
        "frozen": frozenset(["b", "a"]),
        "bytes": b"\x00\xff",
        "bytearray": bytearray(b"hi"),
    }
    assert strict_loads(dump_json(value)) == {
        "dt": "2024-05-06T07:08:09+02:00",
        "naive": "2024-05-06T07:08:09.123000",
        "date": "2024-01-02",
        "time": "03:04:05",
        "uuid": "12345678-1234-5678-1234-567812345678",
        "dec": "1.10",
        "path": "/data/x.csv",
        "pure": "a/b",
        "set": [1, 2, 3],
        "frozen": ["a", "b"],
        "bytes": "AP8=",
        "bytearray": "aGk=",
    }


def test_unserialisable_object_raises_type_error_naming_the_type() -> None:
    class Gadget:
        pass

    with pytest.raises(TypeError, match="Gadget"):
        dump_json({"g": Gadget()})
    with pytest.raises(TypeError, match="Gadget"):
        to_reply([Gadget()])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_dump_json_always_gives_standard_utf8_json(value: Any) -> None:
    data = dump_json(value)
    decoded = strict_loads(data)

    def finite(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [finite(x) for x in v]
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        return v

    # NaN != NaN, so compare through the JSON text of the expected value
    assert json.dumps(decoded, sort_keys=True) == json.dumps(finite(value), sort_keys=True)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "content_type", "body"),
    [
        (wrapper.HTTPError(404, "no such thing"), 404, TEXT, b"no such thing"),
        (wrapper.HTTPError(400, {"field": "x"}), 400, JSON, b'{"field":"x"}'),
        (wrapper.HTTPError(418, b"\x89", "image/png"), 418, "image/png", b"\x89"),
        (wrapper.HTTPError(409, "<p>x</p>", "text/html"), 409, "text/html", b"<p>x</p>"),
        (wrapper.HTTPError(204), 204, None, b""),
        (nuclio_sdk.ExceptionWithResponse(403, "forbidden"), 403, TEXT, b"forbidden"),
        (nuclio_sdk.ExceptionWithResponse(422, {"e": 1}), 422, JSON, b'{"e":1}'),
        (
            nuclio_sdk.ExceptionWithResponse(503, "later", "text/x-later"),
            503,
            "text/x-later",
            b"later",
        ),
    ],
)
def test_http_errors_answer_with_their_status_and_body(
    exc: BaseException, status: int, content_type: Any, body: bytes
) -> None:
    reply = error_reply(exc, "req-1")
    assert (reply.status, reply.content_type, reply.body) == (status, content_type, body)


def test_http_error_subclass_is_honoured() -> None:
    class NotFound(wrapper.HTTPError):
        def __init__(self) -> None:
            super().__init__(404, {"error": "not found"})

    reply = error_reply(NotFound(), "r")
    assert (reply.status, strict_loads(reply.body)) == (404, {"error": "not found"})


def raise_secret() -> None:
    raise ValueError("db password is hunter2-SECRET")


def caught() -> BaseException:
    try:
        raise_secret()
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def test_other_exceptions_are_a_500_without_their_text() -> None:
    reply = error_reply(caught(), "abc123")
    assert reply.status == 500
    assert reply.content_type == JSON
    assert strict_loads(reply.body) == {"error": "handler failed", "request_id": "abc123"}
    assert b"hunter2" not in reply.body
    assert b"ValueError" not in reply.body
    assert b"raise_secret" not in reply.body


@pytest.mark.parametrize("exc", [KeyError("SECRET-key"), RuntimeError("SECRET"), OSError("SECRET")])
def test_no_exception_text_leaks_whatever_the_type(exc: BaseException) -> None:
    reply = error_reply(exc, "rid")
    assert reply.status == 500
    assert b"SECRET" not in reply.body


def test_debug_adds_type_message_and_traceback() -> None:
    reply = error_reply(caught(), "abc123", debug=True)
    assert reply.status == 500
    assert reply.content_type == JSON
    body = strict_loads(reply.body)
    assert body["error"] == "handler failed"
    assert body["request_id"] == "abc123"
    assert body["type"] == "ValueError"
    assert body["message"] == "db password is hunter2-SECRET"
    assert "Traceback (most recent call last)" in body["traceback"]
    assert "raise_secret" in body["traceback"]
    assert "ValueError: db password is hunter2-SECRET" in body["traceback"]


# --- Reply ----------------------------------------------------------------------------------


def test_reply_defaults_and_repr() -> None:
    first, second = Reply(), Reply()
    assert (first.status, first.body, first.content_type, first.stream) == (200, b"", None, None)
    first.headers["X"] = "1"
    assert second.headers == {}  # no shared mutable default
    assert repr(Reply(201, b"abc", JSON)) == "Reply(201, 'application/json', 3 bytes)"
    assert "stream" in repr(Reply(stream=iter(())))


# --- one conversion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrapped",
    [
        lambda body: (201, body),
        lambda body: nuclio_sdk.Response(body=body, status_code=201),
        lambda body: to_reply(body, 201, whole=False),
    ],
    ids=["tuple", "Response", "body"],
)
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("text", TEXT, b"text"),
        (b"\x00", OCTETS, b"\x00"),
        (bytearray(b"ba"), OCTETS, b"ba"),
        ({"a": 1}, JSON, b'{"a":1}'),
        ([1], JSON, b"[1]"),
        (None, None, b""),
        (7, TEXT, b"7"),
        ((404, "inner"), TEXT, b"(404, 'inner')"),  # a body is never itself a status tuple
    ],
    ids=repr,
)
def test_a_body_converts_the_same_in_every_row(
    wrapped: Any, body: Any, content_type: Any, expected: bytes
) -> None:
    """The table is written once: the rows of a tuple, a Response and a bare body agree
    (a Response's default text/plain aside, which labels every body it does not call JSON)."""
    value = wrapped(body)
    reply = value if isinstance(value, Reply) else to_reply(value)
    assert (reply.status, reply.body) == (201, expected)
    if isinstance(value, nuclio_sdk.Response) and content_type != JSON:
        content_type = "text/plain"
    assert reply.content_type == content_type


def test_a_response_whose_body_is_a_response_is_text() -> None:
    inner = nuclio_sdk.Response(body="inner", status_code=404)
    reply = to_reply(nuclio_sdk.Response(body=inner, status_code=202))
    assert reply.status == 202 and reply.body == str(inner).encode()


def test_an_awaitable_is_not_a_value_yet() -> None:
    async def later() -> str:
        return "x"

    pending = later()
    with pytest.raises(Unawaited, match="returned a coroutine that was not awaited") as caught:
        to_reply(pending)
    assert caught.value.awaitable is pending and isinstance(caught.value, TypeError)
    assert asyncio.run(caught.value.awaitable) == "x"


# --- fn-wrapper's HTTP rules ----------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 299, 404, 500, 599])
def test_for_http_keeps_a_final_status(status: int) -> None:
    assert for_http(Reply(status, b"x", TEXT)).status == status


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (100, "status 100: a reply's status is from 200 to 599 (a 1xx status is not a final"),
        (101, "status 101: a reply's status is from 200 to 599 (a 1xx"),
        (199, "status 199: a reply's status is from 200 to 599 (a 1xx"),
        (600, "status 600: a reply's status is from 200 to 599"),
        (0, "status 0: a reply's status is from 200 to 599"),
    ],
)
def test_for_http_refuses_a_status_outside_200_to_599(status: int, message: str) -> None:
    with pytest.raises(BadResponse, match=f"^{re.escape(message)}"):
        for_http(to_reply((status, "x")) if status in (100, 101, 199) else Reply(status))


def test_for_http_drops_framing_and_hop_by_hop_headers_whatever_their_case() -> None:
    given = {
        "Content-Length": "3",
        "transfer-encoding": "chunked",
        "CONNECTION": "close",
        "Keep-Alive": "timeout=5",
        "Proxy-Connection": "close",
        "TE": "trailers",
        "Trailer": "X-T",
        "Upgrade": "h2c",
        "X-Kept": "1",
        "Set-Cookie": "a=b",
    }
    reply = for_http(to_reply(nuclio_sdk.Response(body="hello", headers=given)))
    assert reply.headers == {"X-Kept": "1", "Set-Cookie": "a=b"}
    assert (reply.body, reply.content_type) == (b"hello", "text/plain")


def test_for_http_makes_a_content_type_header_the_content_type() -> None:
    response = nuclio_sdk.Response(body={"a": 1}, headers={"content-type": "application/x+json"})
    reply = for_http(to_reply(response))
    assert (reply.content_type, reply.headers) == ("application/x+json", {})


def test_for_http_on_echoed_request_headers() -> None:
    """Nuclio's `Response(headers=event.headers)`: the request's framing is not the reply's."""
    request = {"Content-Length": "8", "Content-Type": "application/json", "Host": "h", "X-A": "1"}
    reply = for_http(to_reply(nuclio_sdk.Response(body="echo", headers=request)))
    assert reply.headers == {"Host": "h", "X-A": "1"}
    assert (reply.content_type, reply.body) == ("application/json", b"echo")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "a\x01b"}, "header X-A: value 'a\\x01b' holds a control character"),
        ({"X-A": "a\r\nSet-Cookie: x"}, "header X-A: value 'a\\r\\nSet-Cookie: x' holds"),
        ({"X-A": "\x00"}, "header X-A: value '\\x00' holds a control character"),
        ({"X-A": "\x7f"}, "header X-A: value '\\x7f' holds a control character"),
        ({"X-A": "x" * 200 + "\n"}, "header X-A: value '" + "x" * 100 + "'… holds"),
        ({"X\nA": "v"}, "header name 'X\\nA': not an HTTP token"),
        ({"X A": "v"}, "header name 'X A': not an HTTP token"),
        ({"X(A)": "v"}, "header name 'X(A)': not an HTTP token"),
        ({"": "v"}, "header name '': not an HTTP token"),
        ({"Clé": "v"}, "header name 'Clé': not an HTTP token"),
    ],
)
def test_for_http_refuses_control_characters_and_names_that_are_not_tokens(
    headers: dict[str, str], message: str
) -> None:
    with pytest.raises(BadResponse, match=f"^{re.escape(message)}"):
        for_http(to_reply(nuclio_sdk.Response(body="x", headers=headers)))


def test_for_http_refuses_a_control_character_in_the_content_type() -> None:
    reply = to_reply(nuclio_sdk.Response(body="x", content_type="text/html\r\nX-A: 1"))
    with pytest.raises(BadResponse, match=r"^content type 'text/html\\r\\nX-A: 1': holds a"):
        for_http(reply)


def test_for_http_allows_a_tab_and_latin_1_in_a_value() -> None:
    reply = for_http(to_reply(nuclio_sdk.Response(body="x", headers={"X-A": "a\tb é"})))
    assert reply.headers == {"X-A": "a\tb é"}


@pytest.mark.parametrize("status", [204, 304])
def test_for_http_gives_204_and_304_no_body(status: int) -> None:
    assert for_http(to_reply((status, "some body"))).body == b""
    streamed = for_http(to_reply((status, (c for c in "ab"))))
    assert (streamed.body, streamed.stream) == (b"", None)


def test_for_http_leaves_a_plain_reply_as_it_is() -> None:
    reply = to_reply({"a": 1})
    assert for_http(reply) is reply
    assert (reply.status, reply.body, reply.content_type, reply.headers) == (
        200,
        b'{"a":1}',
        JSON,
        {},
    )

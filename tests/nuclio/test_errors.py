"""What the nuclio door answers when an event, a handler or its init goes wrong: never a crash."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from tests.nuclio.conftest import event


def both_loops(code: str) -> Any:
    """`code` as it is (a sync handler: the blocking loop) and with an async handler."""
    return pytest.mark.parametrize(
        "code", [code, code.replace("def handler", "async def handler")], ids=["sync", "async"]
    )


OK = "def handler(context, event):\n    return 'ok'\n"

WRONGLY_TYPED = [
    ("content_type", 5),
    ("content_type", b"application/json"),  # a bin where a str belongs, in decoded mode
    ("content-type", 5),
    ("headers", "X-A: 1"),
    ("headers", [1, 2]),
    ("fields", "a=1"),
    ("body", 5),
    ("body", [1, 2]),
    ("trigger", "http"),
    ("timestamp", "yesterday"),
    ("id", [1]),
    ("path", 3.5),
    ("method", 7),
    ("size", "10"),
    ("offset", "41"),
]


SERVING = 'Exception caught while serving - "malformed event: '
"""How Nuclio's wrapper answers (500) an event it cannot decode, and our reason after it."""


@both_loops(OK)
def test_wrongly_typed_fields_are_answered_500_and_the_loop_goes_on(processor, code: str) -> None:
    fake = processor(code)
    for key, value in WRONGLY_TYPED:
        answer = fake.call({**event(), key: value})
        assert answer.response["status_code"] == 500, (key, value)
        assert answer.response["content_type"] == "text/plain"
        error = answer.body.decode()
        assert error.startswith(f"{SERVING}field {key!r}: expected "), error
        assert answer.duration is None
        [record] = [r for r in answer.logs if r["level"] == "warning"]
        assert "malformed event" in record["message"]
    assert fake.call(event()).body == b"ok"


def answered(response: Any) -> list[tuple[str, int, str]]:
    """A batch's answer as (event_id, status, content type) per event."""
    assert isinstance(response, list), response
    return [(r["event_id"], r["status_code"], r["content_type"]) for r in response]


TEXT = "text/plain"


@both_loops(OK)
@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "raw"])
def test_a_malformed_batch_answers_500_for_each_event_with_its_id(
    processor, code: str, decode: bool
) -> None:
    """NUCLIO_PROTOCOL §5: the processor drops a batch result without an event_id."""
    fake = processor(code, decode=decode)
    batch = fake.call([event(event_id="1"), {**event(event_id="2"), "headers": 1}])
    assert answered(batch.response) == [("1", 500, TEXT), ("2", 500, TEXT)]
    error = batch.response[0]["body"]
    assert error == f"{SERVING}field 'headers': expected dict, got int\""
    [record] = [r for r in batch.logs if r["level"] == "warning"]
    assert "malformed event" in record["message"]
    # an id that cannot be read (not a map, an id of the wrong type) is left empty
    batch = fake.call([event(event_id="1"), 5, {**event(), "id": [1]}, {**event(), "id": 7}])
    assert answered(batch.response) == [
        ("1", 500, TEXT),
        ("", 500, TEXT),
        ("", 500, TEXT),
        ("7", 500, TEXT),
    ]
    assert fake.call(event()).body == b"ok"


def test_a_batch_with_a_string_that_is_not_utf8_answers_each_event(processor) -> None:
    fake = processor(OK)
    bad = msgpack.packb({"id": "2", "path": b"\xff"}, use_bin_type=False)
    fake.send_frame(b"\x92" + msgpack.packb(event(event_id="1"), use_bin_type=True) + bad)
    answer = fake.receive()
    assert answered(answer.response) == [("1", 500, TEXT), ("2", 500, TEXT)]
    assert answer.response[1]["body"].startswith(SERVING)
    assert "not UTF-8" in answer.response[0]["body"]
    assert fake.call(event()).body == b"ok"


def test_a_malformed_batch_while_draining_answers_each_event(processor) -> None:
    import signal

    fake = processor(OK)
    fake.signal(signal.SIGUSR2)
    fake.wait_for_log("draining")
    batch = fake.call([event(event_id="1"), {**event(event_id="2"), "headers": 1}])
    assert answered(batch.response) == [("1", 500, TEXT), ("2", 500, TEXT)]
    assert batch.response[0]["body"].startswith(SERVING)


@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "raw"])
def test_a_map_key_that_is_no_string_is_refused_by_msgpack(processor, decode: bool) -> None:
    fake = processor(OK, decode=decode)
    answer = fake.call({**event(), 5: b"x"})
    assert (answer.response["status_code"], answer.response["content_type"]) == (500, TEXT)
    error = answer.body.decode()
    assert error.startswith(f"{SERVING}the frame is not one msgpack value ("), error
    assert "int is not allowed for map key" in error
    assert fake.call(event()).body == b"ok"


def test_wrongly_typed_fields_in_raw_mode(processor) -> None:
    fake = processor(OK, decode=False)
    answer = fake.call({**event(), "content_type": 5})
    assert answer.response["status_code"] == 500
    assert answer.body.startswith(f"{SERVING}field 'content_type': expected ".encode())
    assert fake.call(event()).body == b"ok"


DEEP_JSON = """
def handler(context, event):
    return f"{type(event.body).__name__} {len(event.body)}"
"""


@both_loops(DEEP_JSON)
def test_a_json_body_nested_too_deep_stays_bytes(processor, code: str) -> None:
    """json.loads raises RecursionError there: the body stays bytes, as invalid JSON does."""
    fake = processor(code)
    body = b"[" * 200_000
    for content_type in ("application/json", "application/cloudevents+json"):
        answer = fake.call(event(body, content_type=content_type))
        assert (answer.response["status_code"], answer.body) == (200, b"bytes 200000")
    assert fake.call(event(b"[1]", content_type="application/json")).body == b"list 1"


def test_a_wrongly_typed_field_while_draining_is_answered_500(processor) -> None:
    import signal

    fake = processor(OK)
    fake.signal(signal.SIGUSR2)
    fake.wait_for_log("draining")
    answer = fake.call({**event(), "content_type": 5})
    assert answer.response["status_code"] == 500
    assert answer.body.startswith(SERVING.encode())


BAD_RESPONSES = """
import nuclio_sdk
import wrapper

def handler(context, event):
    if event.path == "/raise-status":
        raise nuclio_sdk.ExceptionWithResponse("418x", "teapot")
    if event.path == "/raise-content-type":
        raise nuclio_sdk.ExceptionWithResponse(418, "teapot", 5)
    if event.path == "/raise-http-error":
        raise wrapper.HTTPError(1000, "big")
    if event.path == "/return-status":
        return nuclio_sdk.Response(body="x", status_code="418x")
    if event.path == "/return-content-type":
        return nuclio_sdk.Response(body="x", content_type=5)
    if event.path == "/return-headers":
        return nuclio_sdk.Response(body="x", headers=["X-A"])
    if event.path == "/return-bool-status":
        return nuclio_sdk.Response(body="x", status_code=True)
    if event.path == "/teapot":
        raise nuclio_sdk.ExceptionWithResponse(418, "teapot")
    return "ok"
"""


def handler_failed(request_id: str) -> bytes:
    """The nuclio door's body for a handler error (without --debug): no exception text."""
    return (
        f"Exception caught in handler (request id {request_id}): the exception and its "
        "traceback are in the function's log"
    ).encode()


@both_loops(BAD_RESPONSES)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/return-status", "Response.status_code: '418x' is not an HTTP status"),
        ("/return-content-type", "Response.content_type: expected a str, got int"),
        ("/return-headers", "Response.headers: expected a dict of names to values, got list"),
        ("/return-bool-status", "Response.status_code: True is not an HTTP status"),
    ],
)
def test_a_bad_response_field_answers_500_naming_it(
    processor, code: str, path: str, field: str
) -> None:
    fake = processor(code)
    answer = fake.call(event(path=path, event_id="bad-1"))
    assert (answer.response["status_code"], answer.response["content_type"]) == (500, "text/plain")
    assert answer.body == handler_failed("bad-1")
    [record] = [r for r in answer.logs if r["level"] == "error"]
    assert field in record["message"]
    assert fake.call(event()).body == b"ok"


@both_loops(BAD_RESPONSES)
@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/teapot", "ExceptionWithResponse"),
        ("/raise-status", "ExceptionWithResponse"),
        ("/raise-content-type", "ExceptionWithResponse"),
        ("/raise-http-error", "HTTPError"),
    ],
)
def test_an_exception_with_a_response_is_a_handler_error_as_in_nuclio(
    processor, code: str, path: str, logged: str
) -> None:
    """NUCLIO_PROTOCOL §12: Nuclio's wrapper answers ExceptionWithResponse (and so our
    HTTPError) 500 as any exception, whatever its fields, well-formed or not."""
    fake = processor(code)
    answer = fake.call(event(path=path, event_id="raised-1"))
    assert (answer.response["status_code"], answer.response["content_type"]) == (500, "text/plain")
    assert answer.body == handler_failed("raised-1")
    assert answer.duration is None
    [record] = [r for r in answer.logs if r["level"] == "error"]
    assert f"failed: {logged}" in record["message"]
    assert "status" not in record["message"]  # no field of it judged
    debug = processor(code, "--debug").call(event(path=path))
    assert debug.response["status_code"] == 500
    assert debug.body.startswith(b'Exception caught in handler - "')
    assert b'": Traceback (most recent call last):' in debug.body
    assert logged.encode() in debug.body
    assert fake.call(event()).body == b"ok"


FAILING = """
import asyncio
import nuclio_sdk

def handler(context, event):
    if event.path == "/cancelled":
        raise asyncio.CancelledError()
    if event.path == "/interrupt":
        raise KeyboardInterrupt()
    if event.path == "/exit":
        raise SystemExit(3)
    if event.path == "/teapot":
        raise nuclio_sdk.ExceptionWithResponse(418, "teapot")
    if event.path == "/fail":
        raise RuntimeError("failed")
    return "ok"
"""


@both_loops(FAILING)
@pytest.mark.parametrize("path", ["/fail", "/exit", "/interrupt", "/cancelled", "/teapot"])
def test_a_handler_that_raises_gets_r_without_m_and_the_loop_goes_on(
    processor, code: str, path: str
) -> None:
    """Any BaseException, ExceptionWithResponse too, is answered 500 (NUCLIO_PROTOCOL §7)."""
    fake = processor(code)
    answer = fake.call(event(path=path, event_id="raised-1"))
    assert answer.response["status_code"] == 500
    assert answer.body == handler_failed("raised-1")
    assert answer.duration is None  # NUCLIO_PROTOCOL §5: `l` then `r`, no `m`
    done = fake.call(event())
    assert done.body == b"ok" and done.duration is not None


CANCELLED = """
import asyncio

def handler(context, event):
    if event.path == "/generator":
        return stream()
    raise asyncio.CancelledError()

def stream():
    yield "a"
    raise asyncio.CancelledError()
"""


@both_loops(CANCELLED)
def test_a_handler_raising_cancelled_error_is_a_handler_error(processor, code: str) -> None:
    """asyncio.CancelledError is a BaseException: answered 500 as any other, in both loops
    (the async one re-raises only a cancellation of its own task)."""
    fake = processor(code)
    for path in ("/", "/generator"):
        answer = fake.call(event(path=path, event_id="c-1"))
        assert answer.response["status_code"] == 500, path
        assert answer.body == handler_failed("c-1")
        [record] = [r for r in answer.logs if r["level"] == "error"]
        assert "CancelledError" in record["message"]
    batch = fake.call([event(event_id="1"), event(event_id="2")])
    assert [(r["event_id"], r["status_code"]) for r in batch.response] == [("1", 500), ("2", 500)]
    assert batch.duration is None
    assert fake.process.poll() is None  # still serving


AWAITS_A_CANCELLED_TASK = """
import asyncio

async def handler(context, event):
    if event.path == "/cancelled":
        task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        task.cancel()
        await task
    return "ok"
"""


def test_an_async_handler_awaiting_a_cancelled_task_answers_500(processor) -> None:
    fake = processor(AWAITS_A_CANCELLED_TASK)
    assert fake.call(event(path="/cancelled")).response["status_code"] == 500
    assert fake.call(event()).body == b"ok"


EXITING_INIT = """
import sys

def init_context(context):
    sys.exit(0)

def handler(context, event):
    return "ok"
"""


@pytest.mark.parametrize(
    "code", [EXITING_INIT, EXITING_INIT.replace("def init_context", "async def init_context")]
)
def test_sys_exit_in_init_is_an_init_failure(processor, code: str) -> None:
    """An init failure exits 1, as Nuclio's wrapper (NUCLIO_PROTOCOL §7), not SystemExit's 0."""
    fake = processor(code, ready=False)
    record = fake.wait_for_log("init function raised SystemExit")
    assert record["level"] == "error"
    assert fake.process.wait(30) == 1
    assert fake.lines.readline() == b""  # never sent `s`

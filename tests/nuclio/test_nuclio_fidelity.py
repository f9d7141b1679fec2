"""The nuclio door as a drop-in for Nuclio's Python wrapper: what Nuclio's own runtime tests
(pkg/processor/runtime/python/test/python_test.go) and nuclio-sdk's conversion table expect,
checked as the processor takes in each answer (NUCLIO_PROTOCOL.md §6, §7, §9).

Our deliberate differences (NUCLIO_PROTOCOL.md, "What we do better") are tested as such: a
handler error hides the exception text unless `--debug`, and a draining worker answers.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import msgpack
import nuclio_sdk
import nuclio_sdk.json_encoder
import pytest

from tests.nuclio.conftest import FakeProcessor, decode_body, event
from tests.nuclio.handlers.returns import RETURNS

Start = Callable[..., FakeProcessor]


class Seen(NamedTuple):
    """One response as the processor takes it in (result.go): a single event's answer
    may be an object or an array, of which the processor keeps element 0."""

    status: int
    content_type: str
    headers: dict[str, Any]
    body: bytes


def seen(response: Any) -> Seen:
    if isinstance(response, list):
        response = response[0]
    return Seen(
        response.get("status_code", 0),
        response.get("content_type", ""),
        response.get("headers") or {},  # Nuclio's error answers carry no headers at all
        decode_body(response),
    )


def both_loops(code: str) -> Any:
    """`code` as it is (a sync handler) and with an async handler."""
    return pytest.mark.parametrize(
        "code", [code, code.replace("def handler", "async def handler")], ids=["sync", "async"]
    )


def started(workdir: Path, code: str, *args: str) -> FakeProcessor:
    workdir.mkdir()
    fake = FakeProcessor(workdir, code, *args)
    fake.start()
    return fake


# --- TestOutputs ---------------------------------------------------------------------------

OUTPUTTER = """
ANSWERS = {
    "return_string": lambda context, event: "a string",
    "return_status_and_string": lambda context, event: (201, "a string after status"),
    "return_dict": lambda context, event: {"a": "dict", "b": "foo"},
    "return_list": lambda context, event: [{"a": 1}, {"b": 2}],
    "return_status_and_dict": lambda context, event: (201, {"a": "dict after status", "b": "foo"}),
    "return_fields": lambda context, event: ",".join(
        f"{name}={value}" for name, value in sorted(event.fields.items())
    ),
    "return_path": lambda context, event: event.path,
    "return_binary": lambda context, event: b"hello",
}


def handler(context, event):
    \"\"\"Answers as the event's body asks; any method but POST is answered with its name.\"\"\"
    if event.method != "POST":
        return event.method
    mode = event.body.decode("utf-8")
    if mode in ANSWERS:
        return ANSWERS[mode](context, event)
    if mode == "log":
        context.logger.debug("Debug message")
        context.logger.info("Info message")
        context.logger.warn("Warn message")
        context.logger.error("Error message")
        return 201, "returned logs"
    if mode == "log_with":
        context.logger.error_with("Error message", source="rabbit", weight=7)
        return 201, "returned logs with"
    if mode == "return_response":
        headers = event.headers  # the request's headers echoed, plus two
        headers["h1"] = "v1"
        headers["h2"] = "v2"
        return context.Response(
            body="response body", headers=headers, content_type="text/plain", status_code=201
        )
    if mode == "return_error":
        raise ValueError("some error")
    raise RuntimeError(f"no such mode: {mode}")
"""

Body = Union[str, bytes, dict[str, Any], None]
"""What an answer's body must be: text, bytes, a JSON object (parsed and as exact text), or
None for a body Nuclio's test does not look at."""


class Output(NamedTuple):
    """One request of Nuclio's TestOutputs and what it expects back."""

    mode: str  # the request body: which answer the handler gives
    status: int
    content_type: str
    body: Body
    method: str = "POST"
    path: str = "/"
    url: str = "/"
    fields: Optional[dict[str, str]] = None
    headers: Optional[dict[str, str]] = None
    response_headers: Optional[dict[str, Any]] = None


OUTPUTS = [
    pytest.param(Output("return_string", 200, "text/plain", "a string"), id="return string"),
    pytest.param(
        Output("return_status_and_string", 201, "text/plain", "a string after status"),
        id="return string & status",
    ),
    pytest.param(
        Output("return_dict", 200, "application/json", {"a": "dict", "b": "foo"}),
        id="return dict",
    ),
    pytest.param(
        Output(
            "return_status_and_dict",
            201,
            "application/json",
            {"a": "dict after status", "b": "foo"},
        ),
        id="return dict & status",
    ),
    pytest.param(
        Output(
            "return_response",
            201,
            "text/plain",
            "response body",
            headers={"A": "1", "B": "2"},  # Go's http client canonicalises Nuclio's "a", "b"
            response_headers={"A": "1", "B": "2", "h1": "v1", "h2": "v2"},
        ),
        id="return response",
    ),
    pytest.param(Output("something invalid", 500, "text/plain", None), id="raise exception"),
    pytest.param(Output("log", 201, "text/plain", "returned logs"), id="logs"),
    pytest.param(Output("log_with", 201, "text/plain", "returned logs with"), id="logs - with"),
    pytest.param(Output("", 200, "text/plain", "GET", method="GET"), id="get"),
    pytest.param(
        Output(
            "return_fields",
            200,
            "text/plain",
            "x=1,y=2",
            url="/?x=1&y=2",
            fields={"x": "1", "y": "2"},  # the processor puts the query in the event's fields
        ),
        id="fields",
    ),
    pytest.param(
        Output(
            "return_path",
            200,
            "text/plain",
            "/path/to/nowhere",
            path="/path/to/nowhere",
            url="/path/to/nowhere",
        ),
        id="path",
    ),
    pytest.param(Output("return_error", 500, "text/plain", None), id="error"),
    pytest.param(Output("return_binary", 200, "text/plain", b"hello"), id="binary"),
    pytest.param(  # in outputter.py, not in TestOutputs: the batch rule keeps element 0
        Output("return_list", 200, "application/json", {"a": 1}), id="return list"
    ),
]


@pytest.fixture(scope="module")
def outputter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProcessor]:
    """One worker for all of TestOutputs' requests, as Nuclio deploys the function once."""
    fake = started(tmp_path_factory.mktemp("outputter") / "worker", OUTPUTTER)
    yield fake
    fake.close()


def output_event(case: Output, event_id: str) -> dict[str, Any]:
    return event(
        case.mode.encode(),
        method=case.method,
        path=case.path,
        url=case.url,
        headers=case.headers,
        fields=case.fields or {},
        event_id=event_id,
    )


def assert_body(body: bytes, expected: Body) -> None:
    if isinstance(expected, dict):
        assert json.loads(body) == expected
        assert body == json.dumps(expected).encode()  # the SDK encoder's spacing
    elif isinstance(expected, str):
        assert body == expected.encode()
    elif isinstance(expected, bytes):
        assert body == expected


@pytest.mark.parametrize("case", OUTPUTS)
def test_outputs(outputter: FakeProcessor, case: Output) -> None:
    """Nuclio's TestOutputs: status, content type (exactly) and body of each request."""
    answer = seen(outputter.call(output_event(case, f"outputs-{case.mode}")).response)
    assert (answer.status, answer.content_type) == (case.status, case.content_type)
    assert_body(answer.body, case.body)
    if case.response_headers is not None:
        assert answer.headers == case.response_headers
    after = seen(outputter.call(event(b"return_string")).response)  # the worker goes on
    assert (after.status, after.body) == (200, b"a string")


@pytest.mark.parametrize("mode", ["log", "log_with"])
def test_outputs_logs_travel_with_the_event(outputter: FakeProcessor, mode: str) -> None:
    """Nuclio's "logs" cases, loosely (the processor filters records by the request's log
    level; our default level may leave the debug and info records out)."""
    answer = outputter.call(event(mode.encode(), event_id=f"logs-{mode}"))
    messages = [r["message"] for r in answer.logs if r["message"].endswith(" message")]
    if mode == "log":
        order = ["Debug message", "Info message", "Warn message", "Error message"]
        assert messages == [m for m in order if m in messages]
        assert messages[-2:] == ["Warn message", "Error message"]
    else:
        [record] = [r for r in answer.logs if r["message"] == "Error message"]
        assert record["level"] == "error"
        assert (record["with"]["source"], record["with"]["weight"]) == ("rabbit", 7)


@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug"])
def test_a_handler_error_body_shows_the_exception_only_under_debug(
    processor: Start, debug: bool
) -> None:
    """Nuclio's "error" case expects "some error" in the body: so does `--debug`, with
    Nuclio's exact text; by default the body is a fixed text with the request id."""
    fake = processor(OUTPUTTER, *(["--debug"] if debug else []))
    answer = seen(fake.call(event(b"return_error", event_id="error-1")).response)
    assert (answer.status, answer.content_type) == (500, "text/plain")
    text = answer.body.decode()
    if debug:
        prefix = 'Exception caught in handler - "some error": Traceback (most recent call last):\n'
        assert text.startswith(prefix), text
        assert text.endswith("ValueError: some error\n"), text
    else:
        assert "some error" not in text and "ValueError" not in text
        assert "error-1" in text


# --- nuclio-sdk's conversion table -----------------------------------------------------------


def nuclio_answer(value: Any) -> Seen:
    """What Nuclio's wrapper sends for a single event's return `value`, as the processor
    takes it in: a list is a batch answer (one response per element), the rest goes through
    Response.from_entrypoint_output; the wrapper encodes the lot with the SDK's encoder."""
    encode = nuclio_sdk.json_encoder.Encoder().encode
    convert = nuclio_sdk.Response.from_entrypoint_output
    if isinstance(value, list):
        output: Any = [convert(encode, item) for item in value]
    else:
        output = convert(encode, value)
    return seen(json.loads(encode(output)))


RETURNS_CODE = (Path(__file__).parent / "handlers" / "returns.py").read_text()


@pytest.fixture(scope="module", params=["sync", "async"])
def returner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeProcessor]:
    code = RETURNS_CODE
    if request.param == "async":
        code = code.replace("def handler", "async def handler")
    fake = started(tmp_path_factory.mktemp(f"returner-{request.param}") / "worker", code)
    yield fake
    fake.close()


@pytest.mark.parametrize("name", list(RETURNS))
def test_a_return_value_is_answered_as_nuclio_sdk_converts_it(
    returner: FakeProcessor, name: str
) -> None:
    answer = seen(returner.call(event(path=f"/{name}", event_id=f"returns-{name}")).response)
    assert answer == nuclio_answer(RETURNS[name])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("none", Seen(200, "text/plain", {}, b"None")),
        ("int", Seen(200, "text/plain", {}, b"5")),
        ("list-of-dicts", Seen(200, "application/json", {}, b'{"a": 1}')),
        ("list-of-ints", Seen(200, "text/plain", {}, b"1")),
        ("dict-with-nan", Seen(200, "application/json", {}, b'{"v": "NaN"}')),
        ("status-and-bytes", Seen(201, "application/json", {}, b"\"b'x'\"")),
        (
            "response-no-ack",
            Seen(200, "text/plain", {"x-nuclio-stream-no-ack": True}, b"kept"),
        ),
    ],
)
def test_the_sdk_derivation_matches_nuclio_protocol(name: str, expected: Seen) -> None:
    """NUCLIO_PROTOCOL.md §6 spelled out, to keep nuclio_answer itself honest."""
    assert nuclio_answer(RETURNS[name]) == expected


# --- the event as the handler sees it ------------------------------------------------------

EVENT_VIEW = """
import json

def handler(context, event):
    if event.path == "/headers":
        return {"headers": dict(event.headers), "x-lower": event.headers["x-lower"],
                "get_header": event.get_header("X-LOWER")}
    parsed = event.body
    if isinstance(parsed, bytes):
        try:
            parsed = json.loads(event.body)
        except ValueError:
            parsed = None
    return {"type": type(event.body).__name__, "parsed": parsed}
"""


def test_header_names_reach_the_handler_as_the_processor_sent_them(processor: Start) -> None:
    fake = processor(EVENT_VIEW)
    headers = {"comExampleExtension": "1", "x-lower": "2", "Mixed-Case": "3"}
    answer = seen(fake.call(event(path="/headers", headers=headers)).response)
    assert answer.status == 200
    assert json.loads(answer.body) == {"headers": headers, "x-lower": "2", "get_header": "2"}


@pytest.mark.parametrize(
    ("content_type", "body", "kind", "parsed"),
    [
        ("application/json", b'{"a": 1}', "dict", {"a": 1}),
        ("application/json", b"[1, 2]", "list", [1, 2]),
        ("application/json; charset=utf-8", b'{"a": 1}', "bytes", {"a": 1}),
        ("application/cloudevents+json", b'{"a": 1}', "bytes", {"a": 1}),
        ("text/plain", b'{"a": 1}', "bytes", {"a": 1}),
        ("application/json", b"{not json", "bytes", None),
    ],
)
def test_a_body_is_decoded_only_for_exactly_application_json(
    processor: Start, content_type: str, body: bytes, kind: str, parsed: Any
) -> None:
    fake = processor(EVENT_VIEW)
    answer = seen(fake.call(event(body, content_type=content_type)).response)
    assert answer.status == 200
    assert json.loads(answer.body) == {"type": kind, "parsed": parsed}


EVENT_RETURNER = """
import json

def text(value):
    return value.decode() if isinstance(value, bytes) else value

def handler(context, event):
    \"\"\"The event's fields as JSON text, as Nuclio's event-returner function does.\"\"\"
    return json.dumps({
        "id": event.id,
        "eventType": event.trigger.kind,
        "contentType": event.content_type,
        "headers": {text(name): text(value) for name, value in event.headers.items()},
        "timestamp": event.timestamp.isoformat("T") + "Z",
        "path": event.path,
        "url": event.url,
        "method": event.method,
        "type": event.type,
        "typeVersion": event.type_version,
        "version": event.version,
        "body": event.body if isinstance(event.body, dict) else event.body.decode(),
    })
"""


def test_custom_event(processor: Start) -> None:
    """Nuclio's TestCustomEvent: the event's fields reach the handler as sent."""
    fake = processor(EVENT_RETURNER)
    event_id = str(uuid.uuid4())
    headers = {"Testheaderkey1": "testHeaderValue1", "Testheaderkey2": "testHeaderValue2"}
    message = event(
        b"testBody", path="/testPath", method="POST", headers=headers, event_id=event_id
    )
    answer = seen(fake.call(message).response)
    assert (answer.status, answer.content_type) == (200, "text/plain")
    fields = json.loads(answer.body)
    assert uuid.UUID(fields["id"]) == uuid.UUID(event_id)
    assert (fields["body"], fields["path"], fields["method"]) == ("testBody", "/testPath", "POST")
    assert (fields["eventType"], fields["headers"]) == ("http", headers)
    assert fields["timestamp"] == "2023-11-14T22:13:20Z"


def with_non_utf8_header(message: dict[str, Any]) -> bytes:
    """`message` packed as Go packs it, with a header value that is a msgpack str holding
    bytes that are not UTF-8 (Nuclio's TestNonUTF8Headers sends string([]byte{192, 175}))."""
    placeholder = "a-placeholder-for-the-header"
    payload = msgpack.packb({**message, "headers": {"nonUTFHeader": placeholder}})
    assert payload.count(msgpack.packb(placeholder)) == 1
    return payload.replace(msgpack.packb(placeholder), b"\xa2\xc0\xaf")


EMPTY = "def handler(context, event):\n    return ''\n"


@pytest.mark.parametrize(("decode", "header_status"), [(True, 500), (False, 200)])
def test_non_utf8_headers(processor: Start, decode: bool, header_status: int) -> None:
    """Nuclio's TestNonUTF8Headers: a body is bytes, never decoded; a header string that is
    not UTF-8 is answered 500 when strings are decoded, and the worker goes on."""
    fake = processor(EMPTY, decode=decode)
    assert seen(fake.call(event(b"\xc0\xaf")).response).status == 200
    fake.send_frame(with_non_utf8_header(event(b"testBody")))
    assert seen(fake.receive().response).status == header_status
    assert seen(fake.call(event(method="GET")).response).status == 200


# --- errors --------------------------------------------------------------------------------

TEAPOT = """
import nuclio_sdk

def handler(context, event):
    if event.path == "/teapot":
        raise nuclio_sdk.ExceptionWithResponse(418, "teapot")
    return "ok"
"""


@both_loops(TEAPOT)
def test_exception_with_response_is_a_500_like_any_exception(processor: Start, code: str) -> None:
    """Nuclio's wrapper does not treat ExceptionWithResponse specially (§12)."""
    fake = processor(code)
    answer = seen(fake.call(event(path="/teapot")).response)
    assert (answer.status, answer.content_type) == (500, "text/plain")
    assert seen(fake.call(event()).response).body == b"ok"


# --- drain ---------------------------------------------------------------------------------

DRAINABLE = """
def init_context(context):
    context.platform.set_drain_callback(lambda: context.logger.info("drain callback called"))

def handler(context, event):
    return "handled"
"""


def served_again(fake: FakeProcessor, seconds: float = 10) -> Seen:
    """The answer to the first event not refused as draining (SIGCONT is taken in between
    events, so a few may still be refused)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = seen(fake.call(event(event_id="after")).response)
        if answer.status != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


@both_loops(DRAINABLE)
def test_an_event_while_draining_is_answered_503_without_ack(processor: Start, code: str) -> None:
    fake = processor(code)
    fake.signal(signal.SIGUSR2)
    fake.wait_for_log("drain callback called")
    answer = seen(fake.call(event(event_id="during")).response)
    assert (answer.status, answer.content_type) == (503, "text/plain")
    assert "Event discarded" in answer.body.decode()
    # the exact key Nuclio's Kafka and v3io triggers look up (headers.StreamNoAck), a JSON true
    assert answer.headers.get("X-Nuclio-Stream-No-Ack") is True
    fake.signal(signal.SIGCONT)
    after = served_again(fake)
    assert (after.status, after.body) == (200, b"handled")


# --- exits ---------------------------------------------------------------------------------


def exit_before_ready(processor: Start, code: str) -> Optional[int]:
    """The wrapper's exit code, having checked that it never sent `s`."""
    try:
        fake = processor(code, ready=False)
    except AssertionError as failed:  # it exited before it connected
        found = re.search(r"did not connect \(exit (-?\d+|None)\)", str(failed))
        assert found is not None, failed
        return None if found[1] == "None" else int(found[1])
    assert fake.conn is not None
    fake.conn.settimeout(30)
    try:
        while line := fake.lines.readline():
            assert line != b"s\n", f"the wrapper became ready: {fake.output()}"
    except socket.timeout:
        pytest.fail(f"the wrapper neither became ready nor exited: {fake.output()}")
    return fake.process.wait(30)


HANDLER_MISSING = "def other(context, event):\n    return 'never'\n"
INIT_RAISES = """
def handler(context, event):
    return ""

def init_context(context):
    raise RuntimeError("Failure")
"""


@pytest.mark.parametrize(
    "code", [HANDLER_MISSING, INIT_RAISES], ids=["handler-missing", "init-raises"]
)
def test_a_function_that_cannot_start_exits_1_before_ready(processor: Start, code: str) -> None:
    """NUCLIO_PROTOCOL.md §7 and Nuclio's TestContextInitError: exit 1, never ready."""
    assert exit_before_ready(processor, code) == 1


def test_the_processor_closing_both_sockets_ends_the_process_with_1(processor: Start) -> None:
    """§7. (test_protocol.py closes the event socket only; this closes both, as a stopping
    processor does.)"""
    fake = processor(EMPTY)
    fake.hang_up()
    fake.control_lines.close()
    assert fake.control is not None
    fake.control.close()
    assert fake.process.wait(30) == 1


# --- CloudEvents, as Nuclio's cloudevents suite sends them through its HTTP trigger ----------

CLOUD_EVENT_RETURNER = """
import json

def text(value):
    return value.decode() if isinstance(value, bytes) else value

def handler(context, event):
    body = event.body if isinstance(event.body, dict) else event.body.decode()
    return json.dumps({
        "id": text(event.id), "triggerKind": text(event.trigger.kind),
        "contentType": text(event.content_type),
        "headers": {text(k): text(v) for k, v in event.headers.items()},
        "timestamp": event.timestamp.isoformat("T") + "Z", "path": text(event.path),
        "method": text(event.method), "type": text(event.type),
        "typeVersion": text(event.type_version), "version": event.version, "body": body,
    })
"""
CLOUD_EVENT_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    "headers",
    [{"comExampleExtension": "value"}, {}],
    ids=["structured", "binary"],
)
def test_a_cloud_event_reaches_the_handler_as_nuclios_trigger_builds_it(
    processor: Start, headers: dict[str, str]
) -> None:
    """TestStructuredCloudEvent / TestBinaryCloudEvent: the processor maps the CloudEvent's
    attributes onto the event (source → trigger kind, extensions → headers, with their case);
    the door hands them over as they came."""
    fake = processor(CLOUD_EVENT_RETURNER)
    sent = event(
        b"valid xml",
        content_type="text/xml",
        headers=headers,
        path="/testPath",
        event_id="A234-1234-1234",
        trigger={"kind": "/mycontext", "name": ""},
        type="com.example.someevent",
        type_version="1.0",
        version=0,
        timestamp=CLOUD_EVENT_TIME,
    )
    answer = seen(fake.call(sent).response)
    assert answer.status == 200 and answer.content_type == "text/plain"
    got = json.loads(answer.body)
    assert got == {
        "id": "A234-1234-1234",
        "triggerKind": "/mycontext",
        "contentType": "text/xml",
        "headers": headers,
        "timestamp": "2026-01-01T00:00:00Z",
        "path": "/testPath",
        "method": "POST",
        "type": "com.example.someevent",
        "typeVersion": "1.0",
        "version": 0,
        "body": "valid xml",
    }

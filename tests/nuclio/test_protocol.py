"""`fn-wrapper nuclio` driven by a fake processor over real Unix sockets (NUCLIO_PROTOCOL.md)."""

from __future__ import annotations

import base64
import json
import signal
import sys
from pathlib import Path

import msgpack
import pytest

from tests.nuclio.conftest import ROOT, decode_body, event

ECHO = """
import json
import nuclio_sdk

def init_context(context):
    context.user_data.calls = 0
    context.logger.info_with("init done", worker=context.worker_id)

def handler(context, event):
    context.user_data.calls += 1
    if event.path == "/json":
        return {"got": event.body, "type": type(event.body).__name__}
    if event.path == "/bytes":
        return event.body
    if event.path == "/status":
        return nuclio_sdk.Response(body="made", headers={"X-Kind": "custom"},
                                   content_type="text/x-made", status_code=201)
    if event.path == "/log":
        context.logger.warn_with("from the handler", n=3)
        return "logged"
    if event.path == "/fail":
        raise RuntimeError("secret detail")
    if event.path == "/describe":
        return {"method": event.method, "headers": event.headers, "id": event.id,
                "trigger": [event.trigger.kind, event.trigger.name],
                "calls": context.user_data.calls,
                "context_trigger": [context.trigger.kind, context.trigger.name],
                "worker": context.worker_id, "timestamp": event.timestamp.isoformat()}
    return "hello " + event.body.decode()
"""


def test_start_message_then_wrapper_initialized(processor) -> None:
    fake = processor(ECHO, ready=False)
    logs = fake.start()  # `s` on the event socket, wrapperInitialized on the control socket
    assert any(r["message"] == "init done" and r["with"]["worker"] == "0" for r in logs)


def test_text_body_and_the_m_line(processor) -> None:
    fake = processor(ECHO)
    answer = fake.call(event(b"world"))
    assert answer.response == {
        "body": "hello world",
        "body_encoding": "text",
        "content_type": "text/plain",  # Nuclio's, exactly: no charset
        "status_code": 200,
        "headers": {},
    }
    assert answer.duration is not None and answer.duration > 0


def test_json_body_is_decoded_for_a_json_content_type(processor) -> None:
    fake = processor(ECHO)
    answer = fake.call(event(b'{"a": [1, 2]}', content_type="application/json", path="/json"))
    assert answer.response["content_type"] == "application/json"
    assert json.loads(answer.body) == {"got": {"a": [1, 2]}, "type": "dict"}
    bad = fake.call(event(b"{not json", content_type="application/json", path="/json"))
    assert json.loads(bad.body)["type"] == "bytes"  # stays bytes, as Nuclio does


def test_binary_body_round_trips_base64(processor) -> None:
    fake = processor(ECHO)
    payload = bytes(range(256)) * 4
    answer = fake.call(event(payload, content_type="application/octet-stream", path="/bytes"))
    assert answer.response["body_encoding"] == "base64"
    assert answer.response["content_type"] == "text/plain"  # Nuclio's label for bytes
    assert answer.body == payload


def test_response_status_headers_and_content_type(processor) -> None:
    fake = processor(ECHO)
    response = fake.call(event(path="/status")).response
    assert (response["status_code"], response["content_type"]) == (201, "text/x-made")
    assert response["headers"] == {"X-Kind": "custom"}
    assert response["body"] == "made"


def test_event_fields_reach_the_handler(processor) -> None:
    fake = processor(ECHO)
    answer = fake.call(
        event(path="/describe", method="PUT", headers={"x-custom": "v"}, event_id="abc-1")
    )
    described = json.loads(answer.body)
    assert described["method"] == "PUT"
    assert described["headers"] == {"x-custom": "v"}  # names as the processor sent them
    assert described["id"] == "abc-1"
    assert described["trigger"] == ["http", "default-http"]
    assert described["context_trigger"] == ["http", "default-http"]
    assert described["worker"] == "0"
    assert described["timestamp"] == "2023-11-14T22:13:20"  # naive UTC, as Nuclio's wrapper


def test_log_records_travel_as_l_lines_before_the_response(processor) -> None:
    fake = processor(ECHO)
    answer = fake.call(event(path="/log", event_id="log-1"))
    assert answer.body == b"logged"
    [record] = [r for r in answer.logs if r["message"] == "from the handler"]
    assert record["level"] == "warning"
    assert record["with"] == {"n": 3, "request_id": "log-1"}
    assert len(record["datetime"]) == len("2024-01-01 00:00:00,000")


def test_a_handler_exception_answers_500_and_the_loop_goes_on(processor) -> None:
    fake = processor(ECHO)
    answer = fake.call(event(path="/fail", event_id="bad-1"))
    assert (answer.response["status_code"], answer.response["content_type"]) == (500, "text/plain")
    assert answer.body == handler_failed("bad-1")
    assert "secret detail" not in answer.response["body"]
    [record] = [r for r in answer.logs if r["level"] == "error"]
    assert "RuntimeError: secret detail" in record["with"]["traceback"]
    assert fake.call(event(b"again")).body == b"hello again"


def test_an_init_failure_exits_non_zero_before_ready(processor) -> None:
    """Exit 1, as Nuclio's wrapper exits for any failure (NUCLIO_PROTOCOL §7)."""
    code = ECHO + "\ndef init_context(context):\n    raise RuntimeError('no database')\n"
    fake = processor(code, ready=False)
    record = fake.wait_for_log("no database")
    assert record["level"] == "error" and "no database" in record["message"]
    assert fake.process.wait(30) == 1
    assert fake.lines.readline() == b""  # never sent `s`
    assert "fn-wrapper nuclio: error: init function raised RuntimeError: no database" in (
        fake.output()
    )


def test_an_import_failure_exits_non_zero_without_connecting(tmp_path: Path) -> None:
    from tests.nuclio.conftest import FakeProcessor

    with pytest.raises(AssertionError, match=r"did not connect \(exit 1\)") as failed:
        FakeProcessor(tmp_path, "import not_a_module_anywhere\n")
    assert "not_a_module_anywhere" in str(failed.value)


def test_a_10_mib_body(processor) -> None:
    fake = processor(ECHO)
    payload = bytes(range(256)) * (40 * 1024)
    answer = fake.call(event(payload, content_type="application/octet-stream", path="/bytes"))
    assert len(answer.body) == 10 * 1024 * 1024 and answer.body == payload


def test_a_malformed_frame_is_answered_and_the_loop_goes_on(processor) -> None:
    fake = processor(ECHO)
    fake.send_frame(msgpack.packb(42))
    answer = fake.receive()
    assert (answer.response["status_code"], answer.response["content_type"]) == (500, "text/plain")
    assert answer.body.startswith(b'Exception caught while serving - "malformed event: ')
    fake.send_frame(b"\xc1")  # a byte msgpack never uses
    assert fake.receive().response["status_code"] == 500
    # a non-UTF-8 string while strings are decoded
    fake.send_frame(msgpack.packb({"body": b"x", "path": b"\xff\xfe"}, use_bin_type=False))
    assert "not UTF-8" in fake.receive().body.decode()
    assert fake.call(event(b"fine")).body == b"hello fine"


def test_without_decode_event_strings_strings_stay_bytes(processor) -> None:
    code = "def handler(context, event):\n    return repr((event.path, event.method))\n"
    fake = processor(code, decode=False)
    assert fake.call(event(path="/p", method="GET")).body == b"(b'/p', b'GET')"


BATCH = """
import nuclio_sdk

def handler(context, events):
    return [nuclio_sdk.Response(body=e.body.decode().upper(), event_id=e.id,
                                content_type="text/plain", status_code=200, headers={})
            for e in events]
"""


ASYNC_BATCH = """
import asyncio
import nuclio_sdk

async def handler(context, events):
    await asyncio.sleep(0)
    return [nuclio_sdk.Response(body=e.body.decode().upper(), event_id=e.id,
                                content_type="text/plain", status_code=200, headers={})
            for e in events]
"""


DECORATED_BATCH = """
import asyncio
import nuclio_sdk

def plain(function):  # a decorator that hides the coroutine function (no functools.wraps)
    def wrapper(*args):
        return function(*args)
    return wrapper

@plain
async def handler(context, events):
    await asyncio.sleep(0)
    return [nuclio_sdk.Response(body=e.body.decode().upper(), event_id=e.id,
                                content_type="text/plain", status_code=200, headers={})
            for e in events]
"""


@pytest.mark.parametrize(
    "code", [BATCH, ASYNC_BATCH, DECORATED_BATCH], ids=["sync", "async", "decorated-async"]
)
def test_a_batch_gets_one_response_per_event_with_its_id(processor, code: str) -> None:
    fake = processor(code)
    answer = fake.call([event(b"a", event_id="1"), event(b"b", event_id="2")])
    assert isinstance(answer.response, list)
    assert [(r["event_id"], r["body"]) for r in answer.response] == [("1", "A"), ("2", "B")]
    assert answer.duration is not None


UNSENDABLE = """
import nuclio_sdk

def handler(context, events):
    return [nuclio_sdk.Response(body="x", status_code="418x"), "fine"]
"""
"""A batch whose first result has no status the processor could take."""


def handler_failed(request_id: str) -> bytes:
    """The nuclio door's body for a handler error (without --debug): no exception text."""
    return (
        f"Exception caught in handler (request id {request_id}): the exception and its "
        "traceback are in the function's log"
    ).encode()


def test_a_batch_in_raw_mode_answers_with_text_ids(processor) -> None:
    """In raw mode `event.id` is bytes: a Response(event_id=event.id) still answers "1"."""
    fake = processor(BATCH, decode=False)
    answer = fake.call([event(b"a", event_id="1"), event(b"b", event_id="2")])
    assert [(r["event_id"], r["body"]) for r in answer.response] == [("1", "A"), ("2", "B")]
    fake = processor(UNSENDABLE, decode=False)
    answer = fake.call([event(b"a", event_id="1"), event(b"b", event_id="2")])
    statuses = [(r["event_id"], r["status_code"]) for r in answer.response]
    assert statuses == [("1", 500), ("2", 200)]
    assert decode_body(answer.response[0]) == handler_failed("1")


def test_a_batch_result_that_cannot_be_encoded_fails_alone(processor) -> None:
    fake = processor(UNSENDABLE)
    answer = fake.call([event(b"a", event_id="1"), event(b"b", event_id="2")])
    statuses = [(r["event_id"], r["status_code"]) for r in answer.response]
    assert statuses == [("1", 500), ("2", 200)]
    assert fake.call([event(event_id="3")]).response[0]["status_code"] == 500  # still serving


def test_a_batch_result_json_cannot_encode_is_encoded_as_nuclios_sdk_does(processor) -> None:
    """An object json cannot encode is written by its repr (nuclio-sdk's encoder): no error."""
    code = "def handler(context, events):\n    return [{'a': Opaque()}, 'fine']\n"
    code += "class Opaque:\n    def __repr__(self):\n        return 'opaque'\n"
    fake = processor(code)
    answer = fake.call([event(b"a", event_id="1"), event(b"b", event_id="2")])
    assert [(r["event_id"], r["status_code"], r["body"]) for r in answer.response] == [
        ("1", 200, '{"a": "opaque"}'),
        ("2", 200, "fine"),
    ]


ASYNC = """
import asyncio

done = []

async def handler(context, event):
    if event.path == "/spawn":
        async def later():
            await asyncio.sleep(0.05)
            done.append("task ran")
        context.user_data.task = asyncio.get_running_loop().create_task(later())
        return "spawned"
    return ",".join(done) or "nothing yet"
"""


def test_an_async_handlers_task_runs_between_events(processor) -> None:
    fake = processor(ASYNC)
    assert fake.call(event(path="/spawn")).body == b"spawned"
    import time

    time.sleep(0.3)  # no event in flight: only the persistent loop can run the task
    assert fake.call(event(path="/check")).body == b"task ran"


CALLBACKS = """
def init_context(context):
    def drained():
        context.logger.info("drain callback called")
    def terminated():
        context.logger.info("termination callback called")
    context.platform.set_drain_callback(drained)
    context.platform.set_termination_callback(terminated)

def handler(context, event):
    return "handled"
"""


@pytest.mark.parametrize("code", [CALLBACKS, CALLBACKS.replace("def handler", "async def handler")])
def test_drain_then_continue_answers_every_event(processor, code: str) -> None:
    fake = processor(code)
    assert fake.call(event(event_id="before")).body == b"handled"
    fake.signal(signal.SIGUSR2)
    fake.wait_for_log("drain callback called")
    refused = fake.call(event(event_id="during"))
    assert refused.response == {
        "body": "Event discarded: worker draining",
        "body_encoding": "text",
        "content_type": "text/plain",
        "status_code": 503,
        "headers": {"X-Nuclio-Stream-No-Ack": True},  # a stream trigger does not commit it
    }
    batch = fake.call([event(event_id="1"), event(event_id="2")]).response
    assert [(r["event_id"], r["status_code"], r["headers"]) for r in batch] == [
        ("1", 503, {"X-Nuclio-Stream-No-Ack": True}),
        ("2", 503, {"X-Nuclio-Stream-No-Ack": True}),
    ]
    fake.signal(signal.SIGCONT)
    fake.wait_for_log("continuing")
    assert fake.call(event(event_id="after")).body == b"handled"


@pytest.mark.parametrize("code", [CALLBACKS, CALLBACKS.replace("def handler", "async def handler")])
def test_terminate_calls_the_termination_callback_once(processor, code: str) -> None:
    fake = processor(code)
    fake.signal(signal.SIGUSR1)
    fake.wait_for_log("termination callback called")
    refused = fake.call(event()).response
    assert (refused["status_code"], refused["body"]) == (503, "Event discarded: worker terminating")
    assert refused["headers"] == {"X-Nuclio-Stream-No-Ack": True}
    fake.signal(signal.SIGUSR1)  # a second terminate does not call it again
    fake.signal(signal.SIGCONT)  # nor does continue undo it
    assert fake.call(event()).response["status_code"] == 503
    fake.hang_up()
    assert fake.process.wait(30) == 0
    assert fake.output().count("termination callback called") == 0  # it went to the socket


ACK = """
import nuclio_sdk

async def handler(context, event):
    await context.platform.explicit_ack(nuclio_sdk.QualifiedOffset.from_event(event))
    return "acked"
"""


def test_explicit_ack_goes_to_the_control_socket(processor) -> None:
    fake = processor(ACK)
    assert fake.call(event(topic="orders", shard_id=2, offset=41)).body == b"acked"
    message = json.loads(fake.control_lines.readline())
    assert message == {
        "kind": "streamMessageAck",
        "attributes": {"topic": "orders", "partition": 2, "offset": 41},
    }


def test_the_processor_closing_the_socket_ends_the_process_with_1(processor) -> None:
    fake = processor(ECHO)
    fake.hang_up()
    assert fake.process.wait(30) == 1


def test_the_entry_file_stands_in_for_nuclios_wrapper(processor) -> None:
    entry = [sys.executable, "-u", str(ROOT / "wrapper" / "nuclio" / "entry.py")]
    fake = processor(ECHO, entry=entry)
    assert fake.call(event(b"entry")).body == b"hello entry"


def test_a_source_flag_materialises_the_code_first(processor, tmp_path: Path) -> None:
    source = tmp_path / "fn.py"
    source.write_text("def handler(context, event):\n    return 'from source'\n")
    fake = processor("", "--code-src", str(source), "--handler", "handler")
    assert fake.call(event()).body == b"from source"


def test_a_bytes_reply_is_base64_on_the_wire(processor) -> None:
    code = "def handler(context, event):\n    return b'\\xff\\x00'\n"
    fake = processor(code)
    response = fake.call(event()).response
    assert response["body_encoding"] == "base64"
    assert base64.b64decode(response["body"]) == b"\xff\x00"


def test_a_frame_that_cannot_be_framed_ends_the_process_with_1(processor) -> None:
    fake = processor(ECHO)
    assert fake.conn is not None
    fake.conn.sendall(b"\x00\x00\x00\x00")  # a zero length: the stream can no longer be framed
    record = fake.wait_for_log("stopping")
    assert record["level"] == "error" and "announced 0 bytes" in record["message"]
    assert fake.process.wait(30) == 1


LOGGING = """
import os

def handler(context, event):
    if event.path == "/secret":
        context.logger.info("token is " + os.environ["GIT_TOKEN"])
    else:
        context.logger.info("x" * 200_000)
    return "logged"
"""


def test_secrets_are_masked_in_l_lines(processor) -> None:
    fake = processor(LOGGING, env={"GIT_TOKEN": "s3cr3t-value"})
    answer = fake.call(event(path="/secret"))
    [record] = [r for r in answer.logs if r["message"].startswith("token is")]
    assert record["message"] == "token is ***"


def test_a_huge_log_record_is_cut_and_the_framing_holds(processor) -> None:
    fake = processor(LOGGING)
    answer = fake.call(event(path="/big"))
    [record] = [r for r in answer.logs if r["message"].startswith("xxx")]
    assert len(record["message"]) < 70_000
    assert record["message"].endswith("more characters cut]")
    assert answer.body == b"logged"


NO_ACK = """
import nuclio_sdk

def handler(context, event):
    headers = {"X-Count": 5, "X-Name": "n", "X-Ratio": 0.5}
    response = nuclio_sdk.Response(body="kept", headers=headers)
    response.ensure_no_ack()
    return [response] if isinstance(event, list) else response
"""


def test_header_values_stay_json_values_for_stream_no_ack(processor) -> None:
    fake = processor(NO_ACK)
    expected = {"X-Count": 5, "X-Name": "n", "X-Ratio": 0.5, "x-nuclio-stream-no-ack": True}
    assert fake.call(event()).response["headers"] == expected  # Kafka honours only `true`
    assert fake.call([event(event_id="1")]).response[0]["headers"] == expected


def test_a_hyphenated_handler_module_is_imported_as_nuclio_does(processor) -> None:
    fake = processor("def handler(context, event):\n    return 'dashed'\n", module="my-func")
    assert fake.call(event()).body == b"dashed"


LOGS_A_LOT = """
def handler(context, event):
    for _ in range(2000):
        context.logger.info("x" * 10000)
    return "done"
"""


def test_a_processor_that_resets_the_socket_with_lines_unread_gives_exit_1(processor) -> None:
    """Closing with unread `l` lines makes the kernel reset the connection: Nuclio's wrapper
    exits 1 there, and so does the door (not 5, "a bug in fn-wrapper")."""
    fake = processor(LOGS_A_LOT)
    fake.send(event())
    fake.read_line()  # the first log line is on its way: the rest stays unread
    fake.hang_up()
    assert fake.process.wait(30) == 1
    assert "Traceback" not in fake.output() and "a bug in fn-wrapper" not in fake.output()

"""wrapper.testing: users' tests drive the real serve event path, in-process."""

from __future__ import annotations

import pytest

from wrapper.errors import HandlerNotFound, InitError
from wrapper.testing import FunctionClient

CODE = """
import asyncio, time

def init(context, greeting="Hello"):
    context.user_data.greeting = greeting
    context.user_data.calls = 0

def handler(context, event):
    context.user_data.calls += 1
    if event.path == "/fail":
        raise RuntimeError("secret")
    if event.path == "/slow":
        time.sleep(5)
    if event.path == "/stream":
        return (part for part in ("x", "y"))
    name = event.body.get("name") if isinstance(event.body, dict) else event.fields.get("name")
    return {"message": f"{context.user_data.greeting}, {name}!", "calls": context.user_data.calls}
"""


def test_requests_go_through_the_event_path_and_init_runs_once() -> None:
    with FunctionClient(code=CODE, init_function="init", init_parameters={"greeting": "Hi"}) as c:
        first = c.post("/", json={"name": "Ada"})
        second = c.get("/?name=Grace", headers={"X-Request-Id": "abc"})
    assert first.status == 200 and first.json() == {"message": "Hi, Ada!", "calls": 1}
    assert second.json() == {"message": "Hi, Grace!", "calls": 2}
    assert second.headers["x-request-id"] == "abc"
    assert second.headers["content-type"] == "application/json"


def test_errors_limits_streams_and_timeouts_as_served() -> None:
    client = FunctionClient(code=CODE, init_function="init", timeout=0.5, max_body_bytes=10)
    failed = client.get("/fail")
    assert failed.status == 500 and "secret" not in failed.text
    assert client.post("/", body=b"x" * 11).status == 413
    assert client.get("/stream").text == "xy"
    assert client.get("/slow").status == 504
    client.close()


def test_async_handlers() -> None:
    code = "import asyncio\nasync def handler(event):\n    await asyncio.sleep(0)\n    return 'a'\n"
    with FunctionClient(code=code) as client:
        assert client.get("/").text == "a"


def test_load_and_init_errors_surface_as_exceptions() -> None:
    with pytest.raises(HandlerNotFound):
        FunctionClient(code=CODE, handler="nope")
    with pytest.raises(InitError, match="init function raised ZeroDivisionError"):
        FunctionClient(
            code="def init(context):\n    1/0\ndef handler(event):\n    pass\n",
            init_function="init",
        )
    with pytest.raises(TypeError, match="unknown FunctionClient arguments: colour"):
        FunctionClient(code=CODE, colour="red")


def test_async_generators_stream_and_async_timeouts_answer_504() -> None:
    code = (
        "import asyncio\n"
        "async def handler(event):\n"
        "    if event.path == '/slow':\n"
        "        await asyncio.sleep(5)\n"
        "    for part in ({'n': 1}, {'n': 2}):\n"
        "        yield part\n"
    )
    with FunctionClient(code=code, timeout=0.3) as client:
        streamed = client.get("/")
        assert streamed.body == b'{"n":1}\n{"n":2}\n'
        assert streamed.headers["content-type"] == "application/x-ndjson"
        assert client.get("/slow").status == 504


def test_sync_handlers_in_threads_with_concurrency() -> None:
    code = (
        "import threading, time\n"
        "def handler(event):\n"
        "    if event.path == '/slow':\n"
        "        time.sleep(1)\n"
        "    return threading.current_thread().name\n"
    )
    with FunctionClient(code=code, concurrency=2, timeout=0.3) as client:
        assert client.get("/").text.startswith("handler")
        assert client.get("/slow").status == 504

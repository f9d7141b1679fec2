"""`fn-wrapper serve` on a real gunicorn on 127.0.0.1: errors, limits, readiness, signals, load."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import pytest

pytestmark = pytest.mark.slow

FUNCTION = """
import json, os, time

STATE = os.environ["STATE_DIR"]


def init_context(context):
    with open(os.path.join(STATE, "inits"), "a") as out:
        out.write(f"{os.getpid()}\\n")


def handler(context, event):
    path = event.path
    if path == "/fail":
        raise ValueError("password=hunter2")
    if path == "/sleep":
        time.sleep(float(event.fields.get("s", "1")))
        return "slept"
    if path == "/pid":
        return str(os.getpid())
    if path == "/exit":
        os._exit(3)
    if path == "/stream":
        return (chunk for chunk in ["a", "b", "c"])
    if path == "/marker":
        open(os.path.join(STATE, "handler-ran"), "w").close()
        return "ran"
    if path == "/echo":
        body = event.body if isinstance(event.body, (dict, list)) else event.body.decode()
        return {"body": body, "method": event.method, "fields": event.fields,
                "id": event.id, "content_type": event.content_type,
                "agent": event.get_header("user-agent")}
    if path == "/status":
        return 201, {"created": True}
    return "ok"
"""


def inits(served) -> list[str]:  # type: ignore[no-untyped-def]
    path = served.workdir / "inits"
    return path.read_text().split() if path.exists() else []


def test_a_request_becomes_an_event_and_the_reply_comes_back(start_server) -> None:
    served = start_server(FUNCTION)
    status, headers, body = served.request(
        "POST",
        "/echo?x=1&y=2",
        body=b'{"a": 1}',
        headers={
            "Content-Type": "application/json",
            "X-Request-Id": "req-123",
            "User-Agent": "tests",
        },
    )
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "req-123"
    assert json.loads(body) == {
        "body": {"a": 1},
        "method": "POST",
        "fields": {"x": "1", "y": "2"},
        "id": "req-123",
        "content_type": "application/json",
        "agent": "tests",
    }
    status, headers, body = served.get("/status")
    assert (status, json.loads(body)) == (201, {"created": True})
    generated = headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    status, headers, body = served.get("/stream")
    assert (status, body, headers.get("transfer-encoding")) == (200, b"abc", "chunked")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    # user paths never reach the admin endpoints, and the admin port serves only those
    assert served.get("/metrics")[2] == b"ok"
    assert served.get("/live", admin=True)[0] == 200
    assert served.get("/anything", admin=True)[0] == 404


def test_handler_exception_is_500_without_its_text_and_logged(start_server) -> None:
    served = start_server(FUNCTION)
    status, _, body = served.get("/fail", headers={"X-Request-Id": "r-fail"})
    assert status == 500
    assert json.loads(body) == {"error": "handler failed", "request_id": "r-fail"}
    assert b"hunter2" not in body and b"Traceback" not in body
    served.wait(lambda: "hunter2" in served.stderr())
    (record,) = [r for r in served.log_lines() if r.get("request_id") == "r-fail"]
    assert record["level"] == "error" and "ValueError" in record["exception"]
    assert served.metrics()["fn_wrapper_handler_errors_total"] == 1


def test_debug_puts_the_traceback_in_the_body(start_server) -> None:
    served = start_server(FUNCTION, "--debug")
    status, _, body = served.get("/fail")
    assert status == 500
    detail = json.loads(body)
    assert detail["type"] == "ValueError" and "Traceback" in detail["traceback"]


def test_a_timeout_answers_504_and_recycles_the_worker(start_server) -> None:
    served = start_server(FUNCTION, "--timeout", "1", "--workers", "1")
    first_pid = served.get("/pid")[2].decode()
    started = time.monotonic()
    status, _, body = served.get("/sleep?s=30", headers={"X-Request-Id": "r-slow"})
    assert time.monotonic() - started < 10
    assert (status, json.loads(body)) == (
        504,
        {"error": "handler timed out", "request_id": "r-slow"},
    )
    served.wait(lambda: _worker_pid(served) not in (None, first_pid))
    assert len(inits(served)) == 2  # the new worker ran init again
    served.wait(served.ready)
    assert served.metrics()["fn_wrapper_request_timeouts_total"] == 1


def test_a_body_over_the_limit_is_413_before_the_handler_runs(start_server) -> None:
    served = start_server(FUNCTION, "--max-body-size", "1KiB")
    status, headers, body = served.request("POST", "/marker", body=b"x" * 2048)
    answer = json.loads(body)
    assert status == 413 and answer["error"] == "request body too large"
    assert answer["request_id"] == headers["x-request-id"] and len(answer["request_id"]) == 32
    given = {"X-Request-Id": "big-1"}
    status, headers, body = served.request("POST", "/", body=b"x" * 2048, headers=given)
    assert status == 413 and headers["x-request-id"] == json.loads(body)["request_id"] == "big-1"
    assert not (served.workdir / "handler-ran").exists()
    assert served.request("POST", "/marker", body=b"x" * 1024)[0] == 200


def test_a_malformed_request_is_400(start_server) -> None:
    served = start_server(FUNCTION)
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zebra\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    head, _, body = answer.partition(b"\r\n\r\n")
    problem = json.loads(body)
    assert problem["error"].startswith("bad request: ") and len(problem["request_id"]) == 32
    assert f"x-request-id: {problem['request_id']}".encode() in head.split(b"\r\n")
    assert served.get("/")[0] == 200


def test_ready_only_after_init(start_server) -> None:
    slow_init = FUNCTION.replace(
        "def init_context(context):\n", "def init_context(context):\n    time.sleep(2)\n"
    )
    served = start_server(slow_init, "--workers", "2", ready=False)
    served.wait(lambda: _answers(served, "/live"))
    status, _, body = served.get("/ready", admin=True)
    assert status == 503 and json.loads(body)["ready"] is False
    served.wait(served.ready)
    assert json.loads(served.get("/ready", admin=True)[2]) == {
        "ready": True,
        "workers": 2,
        "ready_workers": 2,
        "expected_workers": 2,
    }
    assert len(inits(served)) == 2


def _worker_pid(served) -> Optional[str]:  # type: ignore[no-untyped-def]
    """The pid of the worker that answers, or None: a connection accepted in the instant
    the old worker stops may be closed unanswered (uvicorn closes connections that have not
    sent a request yet when it shuts down)."""
    try:
        return served.get("/pid")[2].decode()
    except OSError:
        return None


def _answers(served, path: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return served.get(path, admin=True, timeout=2)[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize(
    ("code", "exit_code", "message"),
    [
        (
            "def init_context(context):\n    raise RuntimeError('no database')\n"
            "def handler(context, event):\n    return 'x'\n",
            4,
            "init function raised RuntimeError: no database",
        ),
        ("def handle(context, event):\n    return 'x'\n", 3, "has no 'handler'"),
        (
            "def handler(context, event, table):\n    return 'x'\n",
            2,
            "handler argument(s) 'table' get no value",
        ),
        (
            "def handler(context, event):\n    return 'x'\n",
            2,
            "function.python_version: 'PYTHON3_8' is not one of PYTHON3_9",
        ),
    ],
)
def test_a_worker_that_cannot_start_stops_the_server_with_its_exit_code(
    start_server, code: str, exit_code: int, message: str
) -> None:
    bad_spec = ("--python-version", "PYTHON3_8") if "python_version" in message else ()
    served = start_server(code, *bad_spec, ready=False)
    assert served.process.wait(60) == exit_code
    log = served.stderr()
    assert "fn-wrapper serve: error: " in log and message in log
    assert not _answers(served, "/ready")


@pytest.mark.parametrize("flag", ["--port", "--admin-port"])
def test_a_port_in_use_is_one_clear_error_at_once(start_server, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = start_server(
            "def handler(context, event):\n    return 1\n", flag, str(port), ready=False
        )
        assert served.process.wait(30) == 2
    message = f"{flag}: cannot listen on 127.0.0.1:{port}: address already in use"
    assert f"fn-wrapper serve: error: {message}" in served.stderr()
    assert "Traceback" not in served.stderr()


def test_sigterm_lets_the_request_in_flight_finish(start_server) -> None:
    served = start_server(FUNCTION)
    answers: list[tuple[int, bytes]] = []
    thread = threading.Thread(
        target=lambda: answers.append(served.get("/sleep?s=1.5")[::2]), daemon=True
    )
    thread.start()
    time.sleep(0.5)
    served.process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert answers == [(200, b"slept")]
    assert served.process.wait(30) == 0


def test_a_worker_that_dies_is_replaced_and_runs_init_again(start_server) -> None:
    served = start_server(FUNCTION, "--workers", "1")
    with pytest.raises((OSError, ConnectionError)):
        served.get("/exit")
    assert served.get("/")[2] == b"ok"
    assert len(inits(served)) == 2


def test_2000_requests_from_32_clients(start_server) -> None:
    served = start_server(FUNCTION, "--workers", "2")
    before = served.metrics().get('fn_wrapper_requests_total{code="200"}', 0)

    def client(_: int) -> list[int]:
        return [served.get("/")[0] for _ in range(2000 // 32 + 1)]

    with ThreadPoolExecutor(32) as pool:
        statuses = [s for batch in pool.map(client, range(32)) for s in batch]
    assert len(statuses) >= 2000 and set(statuses) == {200}
    metrics = served.metrics()
    assert metrics['fn_wrapper_requests_total{code="200"}'] - before == len(statuses)
    assert metrics["fn_wrapper_request_duration_seconds_count"] == before + len(statuses)
    assert metrics["fn_wrapper_requests_in_flight"] == 0
    assert metrics["fn_wrapper_workers_ready"] == 2


def test_async_handlers_with_concurrency(start_server) -> None:
    code = (
        "import asyncio\n"
        "async def handler(context, event):\n"
        "    await asyncio.sleep(0.5)\n"
        "    return {'path': event.path}\n"
    )
    served = start_server(code, "--workers", "1", "--concurrency", "8")
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: served.get(f"/{i}"), range(8)))
    assert time.monotonic() - started < 3  # 8 x 0.5 s overlapped
    assert [json.loads(a[2])["path"] for a in answers] == [f"/{i}" for i in range(8)]


def test_preload_runs_init_once_in_the_master(start_server) -> None:
    served = start_server(FUNCTION, "--preload", "--workers", "2")
    assert served.get("/")[2] == b"ok"
    assert len(inits(served)) == 1
    assert inits(served)[0] == str(served.process.pid)


def test_workers_stop_when_the_master_is_killed(start_server) -> None:
    served = start_server(FUNCTION, "--workers", "1")
    worker = int(served.get("/pid")[2])
    served.process.kill()  # SIGKILL: no chance to stop its workers
    served.process.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"worker {worker} outlived its master")


STORE_FUNCTION = """
def handler(context, event, project):
    name = event.path.strip("/")
    if event.method == "POST":
        return context.project.log_artifact(name, data=event.body).key
    with project.get_artifact(name).open() as stream:
        return stream.read()
"""


def test_with_a_store_handlers_get_and_log_entities(start_server, tmp_path: Path) -> None:
    store = tmp_path / "store"
    served = start_server(
        STORE_FUNCTION, "--store", str(store), "--project", "web", "--workers", "2"
    )
    status, _, key = served.request("POST", "/notes", body=b"kept")
    assert status == 200 and key.startswith(b"store://web/artifact/artifact/notes:")
    for _ in range(4):  # whichever worker answers reads what the other wrote
        assert served.request("GET", "/notes")[2] == b"kept"
    assert served.request("GET", "/missing")[0] == 500  # EntityNotFound: the handler failed


def test_without_a_store_flag_the_default_store_is_opened_on_first_use(
    start_server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    served = start_server(STORE_FUNCTION, "--workers", "1", env={"XDG_DATA_HOME": str(data)})
    assert not data.exists()  # loaded, init done: no store yet
    status, _, key = served.request("POST", "/notes", body=b"kept")
    assert status == 200 and key.startswith(b"store://default/artifact/artifact/notes:")
    assert served.request("GET", "/notes")[2] == b"kept"
    assert (data / "fn-wrapper" / "store").is_dir()


def test_a_function_that_never_touches_entities_creates_no_store(
    start_server, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    served = start_server(FUNCTION, "--workers", "1", env={"XDG_DATA_HOME": str(data)})
    assert served.get("/pid")[0] == 200
    assert not data.exists()


def test_a_store_that_cannot_be_opened_is_named(start_server, tmp_path: Path) -> None:
    refused = start_server(STORE_FUNCTION, "--store", "ftp://host/x", ready=False)
    assert refused.process.wait(60) == 2
    assert "--store 'ftp://host/x': expected file:///path" in refused.stderr()
    (tmp_path / "file").write_text("not a folder")
    served = start_server(STORE_FUNCTION, "--workers", "1", "--store", str(tmp_path / "file"))
    assert served.request("POST", "/notes", body=b"x")[0] == 500
    assert "--store" in served.stderr() and "AttributeError" not in served.stderr()


RAISES = """
import asyncio, os, time

class Own(BaseException):
    pass

RAISED = {"/keyboard": KeyboardInterrupt, "/exit": SystemExit,
          "/generator-exit": GeneratorExit, "/own": Own}


async def later(path):
    await asyncio.sleep(0)
    if path in RAISED:
        raise RAISED[path]("x")
    if path == "/sleep":
        await asyncio.sleep(30)
    return {"awaited": path, "pid": os.getpid()}


def plain(function):  # a decorator without functools.wraps: the signature is (*args, **kwargs)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)
    return wrapper
"""

HANDLERS = {
    "sync": "def handler(ctx, event):  # Nuclio's names: called by position\n"
    "    path = event.path\n"
    "    if path in RAISED:\n"
    "        raise RAISED[path]('x')\n"
    "    return later(path)  # a sync-looking handler returning a coroutine\n",
    "async": "async def handler(c, e):\n"
    "    if e.path in RAISED:\n"
    "        raise RAISED[e.path]('x')\n"
    "    return later(e.path)  # and an async one returning one, awaited too\n",
    "decorated": "@plain\nasync def handler(context, event):\n    return await later(event.path)\n",
}


@pytest.mark.parametrize(
    ("variant", "args"),
    [
        ("sync", ()),
        ("sync", ("--concurrency", "2")),
        ("async", ()),
        ("decorated", ()),
        ("decorated", ("--concurrency", "2")),
    ],
)
def test_any_base_exception_is_the_handlers_failure_and_awaitables_are_awaited(
    start_server, variant: str, args: tuple[str, ...]
) -> None:
    """KeyboardInterrupt, SystemExit, GeneratorExit or a user's own BaseException: 500 with the
    request id, counted; a returned awaitable is awaited; `(ctx, event)` is called by position."""
    served = start_server(RAISES + HANDLERS[variant], "--workers", "1", "--timeout", "2", *args)
    for path in ("/keyboard", "/exit", "/generator-exit", "/own"):
        request_id = f"r{path.replace('/', '-')}"
        status, headers, body = served.get(path, headers={"X-Request-Id": request_id})
        assert status == 500, (path, body)
        assert json.loads(body) == {"error": "handler failed", "request_id": request_id}
        assert headers["x-request-id"] == request_id
    assert served.metrics()["fn_wrapper_handler_errors_total"] == 4
    status, _, body = served.get("/fine")
    assert status == 200 and json.loads(body)["awaited"] == "/fine"
    pid = json.loads(body)["pid"]
    if variant != "sync":  # an awaited call past the timeout is cancelled: no recycling
        status, _, body = served.get("/sleep", headers={"X-Request-Id": "r-sleep"})
        assert (status, json.loads(body)) == (
            504,
            {"error": "handler timed out", "request_id": "r-sleep"},
        )
        assert json.loads(served.get("/fine")[2])["pid"] == pid
    records = [r for r in served.log_lines() if r.get("request_id") == "r-own"]
    assert records and "Own: x" in records[0]["message"]


def test_serve_honours_a_library_functions_project(start_server, tmp_path: Path) -> None:
    library = {
        "function": {"name": "lib-fn", "python_version": "PYTHON3_11", "labels": ["library"],
                     "project": "shared-lib", "code_src": "main.py"},
    }  # fmt: skip
    code = "def handler(context, event):\n    return context.project.name\n"
    served = start_server(code, "--spec", json.dumps(library), "--store", str(tmp_path / "s"))
    assert served.get("/")[2] == b"shared-lib"
    flagged = start_server(code, "--spec", json.dumps(library), "--project", "mine")
    assert flagged.get("/")[2] == b"mine"  # the flag still wins

"""The test page's endpoints on the admin port (`/`, `/console/*`, with --dev or --reload):
a real server, its requests forwarded to the function, each request's own log records."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.serve.conftest import ONE_PIXEL_PNG, Served, free_port
from wrapper.logs import REQUEST_ID
from wrapper.serve.console import Console, FunctionCard
from wrapper.serve.console_logs import MAX_RECORDS, MAX_REQUESTS, LogBuffer, LogShipper

ECHO = """
import base64

PNG = base64.b64decode("ONE_PIXEL_PNG")

def handler(context, event):
    if event.path == "/image":
        return context.Response(body=PNG, content_type="image/png")
    context.logger.info_with("called", path=event.path, token=event.headers.get("X-Token"))
    context.logger.warning("second record")
    return {
        "method": event.method,
        "path": event.path,
        "query": dict(event.fields),
        "header": event.headers.get("X-Custom"),
        "body": event.body,
    }
""".replace("ONE_PIXEL_PNG", ONE_PIXEL_PNG)


def send(served: Served, request: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    status, _, body = served.request(
        "POST",
        "/console/send",
        json.dumps(request).encode(),
        {"Content-Type": "application/json", **headers},
        admin=True,
    )
    return status, json.loads(body)


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def dev(start_server: Callable[..., Served]) -> Served:
    return start_server(ECHO, "--dev", env={"GIT_TOKEN": "s3cr3t-t0ken-value"})


def test_the_page_is_served_offline_with_a_strict_policy(dev: Served) -> None:
    status, headers, body = dev.get("/", admin=True)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    page = body.decode()
    assert "/console/send" in page and "/console/info" in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere: offline


def test_info_names_the_function(dev: Served) -> None:
    status, _, body = dev.get("/console/info", admin=True)
    info = json.loads(body)
    assert status == 200
    assert info == {
        "name": "main",
        "handler": "handler",
        "source": str(dev.workdir / "main.py"),
        "mode": "dev",
        "workers": 1,
        "reload": None,
    }


def test_an_event_is_forwarded_and_answered_with_its_own_log_records(dev: Served) -> None:
    request = {
        "method": "put",
        "path": "/orders/7",
        "query": [["a", "1"], ["b", "x y"]],
        "headers": [
            ["X-Custom", "yes"],
            ["Content-Type", "application/json"],
            ["X-Token", "s3cr3t-t0ken-value"],
        ],
        "body": encoded(b'{"n": 7}'),
    }
    status, answer = send(dev, request)
    other_status, other = send(dev, {**request, "path": "/other"})
    assert status == other_status == 200
    assert answer["status"] == 200 and answer["reason"] == "OK"
    assert json.loads(base64.b64decode(answer["body"])) == {
        "method": "PUT",
        "path": "/orders/7",
        "query": {"a": "1", "b": "x y"},
        "header": "yes",
        "body": {"n": 7},
    }
    assert ["x-request-id", answer["request_id"]] in answer["headers"]
    assert answer["elapsed_ms"] > 0 and answer["truncated"] is False
    records = answer["logs"]
    assert [(r["level"], r["message"]) for r in records] == [
        ("info", "called"),
        ("warning", "second record"),
    ]
    assert records[0]["with"] == {"path": "/orders/7", "token": "***"}  # masked, as on stderr
    assert records[0]["worker_id"] == "0" and records[0]["logger"] == "function"
    assert other["request_id"] != answer["request_id"]
    assert other["logs"][0]["with"]["path"] == "/other"  # each request its own records
    _, _, again = dev.get(f"/console/logs?request_id={answer['request_id']}", admin=True)
    assert json.loads(again)["logs"] == records


def test_a_given_request_id_is_kept_and_an_image_comes_back_whole(dev: Served) -> None:
    status, answer = send(
        dev, {"method": "GET", "path": "/image", "headers": [["X-Request-Id", "my-id-1"]]}
    )
    assert status == 200 and answer["request_id"] == "my-id-1"
    assert ["content-type", "image/png"] in answer["headers"]
    assert base64.b64decode(answer["body"]).startswith(b"\x89PNG\r\n")


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"method": "GET", "path": "orders"}, "path: 'orders' does not start with /"),
        ({"path": "/", "headers": [["Bad Name", "x"]]}, "Bad Name"),
        ({"path": "/", "headers": [["X-A", "one\r\nX-B: two"]]}, "X-A"),
        ({"path": "/", "query": {"a": 1}}, "query: a list of [name, value] pairs"),
        ({"path": "/", "body": "not base64!"}, "base64"),
        ({"method": "GE T", "path": "/"}, "GE T"),
        (["GET", "/"], "the request: a JSON object"),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong(
    dev: Served, request_: Any, expected: str
) -> None:
    status, answer = send(dev, request_)
    assert status == 400
    assert expected in answer["error"]


def test_only_the_page_itself_may_send(dev: Served) -> None:
    request = json.dumps({"path": "/"}).encode()
    status, _, body = dev.request(
        "POST",
        "/console/send",
        request,
        {"Content-Type": "application/json", "Origin": "http://attacker.example"},
        admin=True,
    )
    assert status == 403 and b"own origin" in body
    status, _, body = dev.request(
        "POST", "/console/send", request, {"Content-Type": "text/plain"}, admin=True
    )
    assert status == 415  # a cross-site form cannot post JSON without asking first
    origin = f"http://127.0.0.1:{dev.admin_port}"
    status, answer = send(dev, {"path": "/"}, Origin=origin)
    assert status == 200 and answer["status"] == 200


def test_a_name_made_to_point_here_gets_nothing(dev: Served) -> None:
    """DNS rebinding: a site's name resolved to this machine reads and sends nothing."""
    foreign = {"Host": f"attacker.example:{dev.admin_port}"}
    for path in ("/", "/console/info", "/console/logs?request_id=x"):
        status, _, body = dev.get(path, admin=True, headers=foreign)
        assert status == 403 and b"localhost" in body, path
    status, _, _ = dev.request(
        "POST",
        "/console/send",
        b'{"path": "/"}',
        {**foreign, "Origin": f"http://{foreign['Host']}", "Content-Type": "application/json"},
        admin=True,
    )
    assert status == 403
    for host in (f"localhost:{dev.admin_port}", f"[::1]:{dev.admin_port}", "127.0.0.1"):
        assert dev.get("/console/info", admin=True, headers={"Host": host})[0] == 200, host
    assert dev.get("/ready", admin=True, headers=foreign)[0] == 200  # probes: as ever


def test_a_request_over_the_limit_is_refused_before_it_is_read(
    start_server: Callable[..., Served],
) -> None:
    served = start_server(ECHO, "--dev", "--max-body-size", "1KiB")
    status, _, body = served.request(
        "POST",
        "/console/send",
        b"x" * 200_000,
        {"Content-Type": "application/json"},
        admin=True,
    )
    assert status == 413 and b"over" in body
    status, answer = send(served, {"path": "/", "body": encoded(b"y" * 2048)})
    assert status == 200 and answer["status"] == 413  # the function's own limit, shown as is


def test_the_page_is_off_without_dev_or_reload(start_server: Callable[..., Served]) -> None:
    served = start_server(ECHO, "--workers", "1")
    assert served.get("/", admin=True)[0] == 404
    assert served.get("/console/info", admin=True)[0] == 404
    status, _, _ = served.request(
        "POST", "/console/send", b"{}", {"Content-Type": "application/json"}, admin=True
    )
    assert status == 404


def test_a_function_that_does_not_answer_is_a_502_naming_the_address(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    console = Console(
        FunctionCard("f", "main:handler", "f.py", "dev"), tmp_path, "0.0.0.0", port, 1, 1024
    )
    try:
        status, _, body = console.send(b'{"path": "/"}')
    finally:
        console.stop()
    assert status == 502
    assert f"the function did not answer on 127.0.0.1:{port}" in json.loads(body)["error"]


def test_the_buffer_keeps_the_newest_requests_and_the_first_records_of_each(
    tmp_path: Path,
) -> None:
    buffer = LogBuffer(tmp_path)
    shipper = LogShipper(buffer.path)
    record = logging.LogRecord("function", logging.INFO, __file__, 1, "record %d", (0,), None)
    try:
        for number in range(MAX_REQUESTS + 5):
            token = REQUEST_ID.set(f"request-{number}")
            try:
                shipper.emit(record)
            finally:
                REQUEST_ID.reset(token)
            buffer.drain()
        token = REQUEST_ID.set("busy")
        try:
            for _ in range(MAX_RECORDS + 50):
                shipper.emit(record)
                buffer.drain()
        finally:
            REQUEST_ID.reset(token)
        assert buffer.records("request-0") == []  # the oldest are forgotten
        assert [r["message"] for r in buffer.records(f"request-{MAX_REQUESTS + 4}")] == ["record 0"]
        assert len(buffer.records("busy")) == MAX_RECORDS
    finally:
        shipper.close()
        buffer.stop()


def test_a_worker_never_waits_for_a_reader(tmp_path: Path) -> None:
    buffer = LogBuffer(tmp_path)  # not started: nothing reads the socket
    shipper = LogShipper(buffer.path)
    record = logging.LogRecord("function", logging.INFO, __file__, 1, "x" * 4000, (), None)
    token = REQUEST_ID.set("flood")
    try:
        started = time.perf_counter()
        for _ in range(5000):  # far more than the socket holds: the rest are dropped
            shipper.emit(record)
        assert time.perf_counter() - started < 5
        assert 0 < len(buffer.records("flood")) <= MAX_RECORDS
    finally:
        REQUEST_ID.reset(token)
        shipper.close()
        buffer.stop()


def test_a_deep_state_folder_gets_a_short_socket_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    buffer = LogBuffer(deep)
    folder = buffer.path.parent
    try:
        assert len(str(buffer.path)) <= 100 and oct(buffer.path.stat().st_mode)[-3:] == "600"
    finally:
        buffer.stop()
    assert not folder.exists()

"""`fn-wrapper serve` answers valid HTTP/1.1 whatever the handler returns (DESIGN §4): a strict
client (h11) on one kept-alive connection parses every byte, and after each hostile reply
the next request on the same connection is answered correctly."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any, Optional

import h11
import pytest

from tests.serve.conftest import Served

pytestmark = pytest.mark.slow

FUNCTION = """
import nuclio_sdk
from wrapper import HTTPError

Response = nuclio_sdk.Response
HEADERS = {
    "/length": {"Content-Length": "3"},
    "/chunked": {"Transfer-Encoding": "chunked"},
    "/hop": {"Connection": "close", "Keep-Alive": "timeout=1", "Upgrade": "h2c", "TE": "trailers",
             "Trailer": "X-T", "Proxy-Connection": "close", "X-Kept": "yes"},
    "/ours": {"X-Request-Id": "not-yours", "Date": "Thu, 01 Jan 1970 00:00:00 GMT"},
    "/type": {"content-TYPE": "text/html; charset=utf-8"},
    "/tab": {"X-Tab": "a\\tb"},
    "/control-value": {"X-Bad": "a\\x01b"},
    "/newline": {"X-Bad": "a\\r\\nInjected: 1"},
    "/nul": {"X-Bad": "a\\x00"},
    "/delete": {"X-Bad": "a\\x7f"},
    "/control-name": {"X\\x01Bad": "v"},
    "/space-name": {"X Bad": "v"},
    "/colon-name": {"X-Bad:": "v"},
    "/empty-name": {"": "v"},
}


def handler(context, event):
    path = event.path
    if path in HEADERS:
        return Response(headers=HEADERS[path], body="hello")
    if path == "/echo":
        return Response(headers=event.headers, body="echo", status_code=201)
    if path == "/204":
        return 204, "some body"
    if path == "/304":
        return 304, {"some": "body"}
    if path == "/204-stream":
        return 204, (chunk for chunk in ["a", "b"])
    if path == "/stream":
        return (chunk for chunk in ["a", "b", "c"])
    if path == "/101":
        return 101, "x"
    if path == "/100":
        return Response(status_code=100, body="x")
    if path == "/600":
        return Response(status_code=600, body="x")
    if path == "/error-101":
        raise HTTPError(101, "x")
    if path == "/error-600":
        raise HTTPError(600, "x")
    if path == "/control-type":
        return Response(content_type="text/plain\\r\\nX-Injected: 1", body="x")
    return "ok"
"""


class StrictClient:
    """h11 on one kept-alive connection: a reply that breaks the framing fails the test."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.connection = h11.Connection(h11.CLIENT)

    def request(
        self, method: str, path: str, headers: Optional[dict[str, str]] = None, body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers (names lower-case, in order) and body; the connection is reused."""
        fields = [("Host", "127.0.0.1"), *(headers or {}).items()]
        if body:
            fields.append(("Content-Length", str(len(body))))
        data = self.connection.send(h11.Request(method=method, target=path, headers=fields))
        if body:
            data += self.connection.send(h11.Data(data=body))  # type: ignore[operator]
        data += self.connection.send(h11.EndOfMessage())  # type: ignore[operator]
        self.sock.sendall(data)  # type: ignore[arg-type]
        response = self._next()
        assert isinstance(response, h11.Response), response  # no 1xx, ever
        received = b""
        while not isinstance(event := self._next(), h11.EndOfMessage):
            assert isinstance(event, h11.Data), event
            received += event.data
        assert self.connection.our_state is h11.DONE and self.connection.their_state is h11.DONE
        self.connection.start_next_cycle()  # the connection stays open for the next request
        fields_back = [(k.decode(), v.decode("latin-1")) for k, v in response.headers]
        return response.status_code, fields_back, received

    def _next(self) -> Any:
        while True:
            event = self.connection.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.connection.receive_data(self.sock.recv(65536))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(FUNCTION, tmp_path_factory.mktemp("framing"), "--workers", "1")
    try:
        server.wait(server.ready)
        yield server
    finally:
        server.close()


@pytest.fixture
def client(served: Served) -> Iterator[StrictClient]:
    strict = StrictClient(served.port)
    yield strict
    strict.close()


def named(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key == name]


def assert_next_is_answered(client: StrictClient) -> None:
    """The request after a hostile reply, on the same connection, is answered correctly."""
    status, headers, body = client.request("GET", "/ok")
    assert (status, body, named(headers, "content-length")) == (200, b"ok", ["2"])


def handler_errors(served: Served) -> float:
    return served.metrics().get("fn_wrapper_handler_errors_total", 0)


@pytest.mark.parametrize("path", ["/length", "/chunked", "/hop"])
def test_framing_headers_are_the_servers(client: StrictClient, path: str) -> None:
    status, headers, body = client.request("GET", path)
    assert (status, body) == (200, b"hello")
    assert named(headers, "content-length") == ["5"]
    assert named(headers, "transfer-encoding") == []
    for hop in ("connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection"):
        assert named(headers, hop) == []
    if path == "/hop":
        assert named(headers, "x-kept") == ["yes"]  # what is not framing passes
    assert_next_is_answered(client)


def test_the_request_id_and_date_headers_are_the_servers(client: StrictClient) -> None:
    status, headers, _ = client.request("GET", "/ours", headers={"X-Request-Id": "mine"})
    assert status == 200
    assert named(headers, "x-request-id") == ["mine"]
    assert len(named(headers, "date")) == 1 and "1970" not in named(headers, "date")[0]
    assert_next_is_answered(client)


def test_a_content_type_header_is_the_replys_one_content_type(client: StrictClient) -> None:
    status, headers, body = client.request("GET", "/type")
    assert (status, body) == (200, b"hello")
    assert named(headers, "content-type") == ["text/html; charset=utf-8"]
    assert_next_is_answered(client)


def test_echoing_the_request_headers_gives_a_reply_that_parses(client: StrictClient) -> None:
    """Nuclio's pattern `Response(headers=event.headers)`: the request's Content-Length and
    Content-Type are not sent beside the reply's own."""
    status, headers, body = client.request(
        "POST",
        "/echo",
        headers={"Content-Type": "application/json", "X-Request-Id": "r-echo", "X-Own": "1"},
        body=b'{"a": 1}',
    )
    assert (status, body) == (201, b"echo")
    assert named(headers, "content-length") == ["4"]
    assert named(headers, "content-type") == ["application/json"]  # the handler's, once
    assert named(headers, "x-request-id") == ["r-echo"]
    assert named(headers, "x-own") == ["1"]
    assert_next_is_answered(client)


@pytest.mark.parametrize(("path", "status"), [("/204", 204), ("/304", 304), ("/204-stream", 204)])
def test_204_and_304_have_no_body(client: StrictClient, path: str, status: int) -> None:
    answer, headers, body = client.request("GET", path)
    assert (answer, body) == (status, b"")
    assert named(headers, "content-length") == [] and named(headers, "transfer-encoding") == []
    assert_next_is_answered(client)


def test_head_has_the_length_and_no_body(client: StrictClient) -> None:
    status, headers, body = client.request("HEAD", "/type")
    assert (status, body, named(headers, "content-length")) == (200, b"", ["5"])
    assert_next_is_answered(client)
    status, headers, body = client.request("HEAD", "/stream")
    assert (status, body) == (200, b"")
    assert named(headers, "content-type") == ["text/plain; charset=utf-8"]
    assert_next_is_answered(client)


def test_a_stream_is_chunked_on_a_kept_alive_connection(client: StrictClient) -> None:
    status, headers, body = client.request("GET", "/stream")
    assert (status, body, named(headers, "transfer-encoding")) == (200, b"abc", ["chunked"])
    assert_next_is_answered(client)


@pytest.mark.parametrize("path", ["/101", "/100", "/600", "/error-101", "/error-600"])
def test_a_status_outside_200_to_599_is_a_handler_error(
    served: Served, client: StrictClient, path: str
) -> None:
    before = handler_errors(served)
    request_id = f"r{path.replace('/', '-')}"
    status, headers, body = client.request("GET", path, headers={"X-Request-Id": request_id})
    assert status == 500
    assert json.loads(body) == {"error": "handler failed", "request_id": request_id}
    assert named(headers, "x-request-id") == [request_id]
    assert handler_errors(served) == before + 1
    assert_next_is_answered(client)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/control-value", "header X-Bad: value 'a\\x01b' holds a control character"),
        ("/newline", "header X-Bad: value 'a\\r\\nInjected: 1' holds a control character"),
        ("/nul", "header X-Bad: value 'a\\x00' holds a control character"),
        ("/delete", "header X-Bad: value 'a\\x7f' holds a control character"),
        ("/control-name", "header name 'X\\x01Bad': not an HTTP token"),
        ("/space-name", "header name 'X Bad': not an HTTP token"),
        ("/colon-name", "header name 'X-Bad:': not an HTTP token"),
        ("/empty-name", "header name '': not an HTTP token"),
        ("/control-type", "content type 'text/plain\\r\\nX-Injected: 1': holds a control"),
    ],
)
def test_control_characters_are_refused_with_a_500_and_logged(
    served: Served, client: StrictClient, path: str, refused: str
) -> None:
    before = handler_errors(served)
    request_id = f"r{path.replace('/', '-')}"
    status, headers, body = client.request("GET", path, headers={"X-Request-Id": request_id})
    assert status == 500
    assert json.loads(body) == {"error": "handler failed", "request_id": request_id}
    assert named(headers, "x-request-id") == [request_id]
    assert handler_errors(served) == before + 1
    served.wait(lambda: any(r.get("request_id") == request_id for r in served.log_lines()))
    (record,) = [r for r in served.log_lines() if r.get("request_id") == request_id]
    assert record["level"] == "error" and refused in record["message"], record["message"]
    assert_next_is_answered(client)


def test_a_tab_in_a_header_value_is_valid_http(client: StrictClient) -> None:
    status, headers, _ = client.request("GET", "/tab")
    assert (status, named(headers, "x-tab")) == (200, ["a\tb"])
    assert_next_is_answered(client)

"""Events as Nuclio's HTTP trigger builds them, end to end: through a real `fn-wrapper serve`
and through `fn-wrapper invoke` (DESIGN §4, "Events in")."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.cloudevents_cases import BINARY_01, NOW, STRUCTURED_01
from tests.serve.conftest import Served

pytestmark = pytest.mark.slow

DESCRIBE = """
import datetime


def handler(context, event):
    body = event.body
    body = {"bytes": body.decode("latin-1")} if isinstance(body, bytes) else {"object": body}
    age = datetime.datetime.utcnow() - event.timestamp  # a TypeError if it were aware
    return {
        "body": body,
        "content_type": event.content_type,
        "headers": dict(event.headers),
        "fields": dict(event.fields),
        "id": event.id,
        "method": event.method,
        "path": event.path,
        "url": event.url,
        "size": event.size,
        "naive": event.timestamp.tzinfo is None,
        "age": age.total_seconds(),
        "timestamp": event.timestamp.isoformat(),
        "trigger": [event.trigger.kind, event.trigger.name],
        "shard_id": event.shard_id,
        "num_shards": event.num_shards,
        "type": event.type,
        "type_version": event.type_version,
        "version": event.version,
        "last_in_batch": event.last_in_batch,
        "offset": event.offset,
        "topic": event.topic,
    }
"""

STRUCTURED_10 = {
    "specversion": "1.0",
    "type": "com.example.someevent",
    "source": "/mycontext",
    "id": "A234-1234-1234",
    "time": NOW,
    "datacontenttype": "application/json",
    "comexampleextension": "value",
    "data": {"a": [1, 2]},
}
BINARY_10 = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-type": "com.example.someevent",
    "ce-source": "/mycontext",
    "ce-id": "A234-1234-1234",
    "ce-time": NOW,
}
CE_FIELDS = {
    "trigger": ["/mycontext", "/mycontext"],
    "type": "com.example.someevent",
    "id": "A234-1234-1234",
    "timestamp": "2024-05-06T07:08:09",
    "method": "POST",
    "path": "/p",
    "fields": {"q": "1"},
}

# (name, method, path, body, headers, expected subset of the described event)
CASES: list[tuple[str, str, str, bytes, dict[str, str], dict[str, Any]]] = [
    (
        "plain-get",
        "GET",
        "/items?x=1&x=2&y=",
        b"",
        {"X-Custom-Thing": "v"},
        {
            "body": {"bytes": ""},
            "content_type": "",
            "fields": {"x": "2", "y": ""},
            "method": "GET",
            "path": "/items",
            "url": "/items?x=1&x=2&y=",
            "size": 0,
            "trigger": ["http", ""],
            "shard_id": -1,
            "num_shards": 0,
            "type": "",
            "type_version": "",
            "version": "",
            "last_in_batch": False,
            "offset": 0,
            "topic": "",
        },
    ),
    (
        "json",
        "POST",
        "/",
        b'{"a": 1}',
        {"Content-Type": "application/json"},
        {"body": {"object": {"a": 1}}, "size": 8},
    ),
    (
        "json-charset",
        "POST",
        "/",
        b'{"a": 1}',
        {"Content-Type": "application/json; charset=utf-8"},
        {"body": {"bytes": '{"a": 1}'}, "content_type": "application/json; charset=utf-8"},
    ),
    (
        "plus-json",
        "POST",
        "/",
        b'{"a": 1}',
        {"Content-Type": "application/vnd.api+json"},
        {"body": {"bytes": '{"a": 1}'}},
    ),
    (
        "invalid-json",
        "POST",
        "/",
        b"{nope",
        {"Content-Type": "application/json"},
        {"body": {"bytes": "{nope"}},
    ),
    (
        "ce-0.1-structured",
        "POST",
        "/p?q=1",
        json.dumps(STRUCTURED_01).encode(),
        {"Content-Type": "application/cloudevents+json"},
        {
            **CE_FIELDS,
            "body": {"bytes": "valid xml"},
            "content_type": "text/xml",
            "headers": {"comExampleExtension": "value"},
            "type_version": "1.0",
            "version": "0.1",
            "size": 9,
        },
    ),
    (
        "ce-0.1-binary",
        "POST",
        "/p?q=1",
        b"valid xml",
        BINARY_01,
        {
            **CE_FIELDS,
            "trigger": ["/mycontext", ""],
            "body": {"bytes": "valid xml"},
            "content_type": "text/xml",
            "type_version": "1.0",
            "version": "0.1",
        },
    ),
    (
        "ce-1.0-structured",
        "POST",
        "/p?q=1",
        json.dumps(STRUCTURED_10).encode(),
        {"Content-Type": "application/cloudevents+json; charset=utf-8"},
        {
            **CE_FIELDS,
            "body": {"object": {"a": [1, 2]}},
            "content_type": "application/json",
            "headers": {"comexampleextension": "value"},
            "type_version": "",
            "version": "1.0",
        },
    ),
    (
        "ce-1.0-binary",
        "POST",
        "/p?q=1",
        b'{"a": 1}',
        BINARY_10,
        {**CE_FIELDS, "body": {"object": {"a": 1}}, "version": "1.0", "size": 8},
    ),
    (
        "ce-malformed",
        "POST",
        "/p?q=1",
        b'{"specversion": 1, "id": "x"}',
        {"Content-Type": "application/cloudevents+json", "X-Request-Id": "req-9"},
        {
            "body": {"bytes": '{"specversion": 1, "id": "x"}'},
            "content_type": "application/cloudevents+json",
            "id": "req-9",
            "trigger": ["http", ""],
            "version": "",
        },
    ),
]


def check(described: dict[str, Any], expected: dict[str, Any]) -> None:
    """The described event has the expected fields; its timestamp is naive UTC (now, unless a
    CloudEvent gave its time)."""
    assert described["naive"] is True
    if "timestamp" not in expected:
        assert 0 <= described["age"] < 60
    for key, value in expected.items():
        assert described[key] == value, key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: each case is one request."""
    workdir = tmp_path_factory.mktemp("events")
    server = Served(DESCRIBE, workdir)
    try:
        server.wait(server.ready)
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_serve(
    served: Served,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    expected: dict[str, Any],
) -> None:
    status, reply_headers, answer = served.request(method, path, body=body, headers=headers)
    assert status == 200, answer
    described = json.loads(answer)
    check(described, expected)
    assert reply_headers["x-request-id"] == described["id"]


def test_serve_headers_are_canonical(served: Served) -> None:
    described = json.loads(served.get("/", headers={"x-custom-THING": "v"})[2])
    assert described["headers"]["X-Custom-Thing"] == "v"


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_invoke(
    run_cli: Callable[..., subprocess.CompletedProcess],
    tmp_path: Path,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    expected: dict[str, Any],
) -> None:
    (tmp_path / "describe.py").write_text(DESCRIBE)
    flags = [flag for name, value in headers.items() for flag in ("--header", f"{name}: {value}")]
    if body:
        (tmp_path / "body").write_bytes(body)
        flags += ["--body", f"@{tmp_path / 'body'}"]
    result = run_cli(
        "invoke", "--code-src", str(tmp_path / "describe.py"), "--method", method,
        "--path", path, *flags,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    check(json.loads(result.stdout), expected)

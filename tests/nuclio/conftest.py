"""A fake Nuclio processor, written from NUCLIO_PROTOCOL.md: it listens on real Unix sockets,
spawns `fn-wrapper nuclio` with the processor's command line, and speaks the protocol."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]


def event(
    body: bytes = b"",
    *,
    content_type: str = "text/plain",
    headers: Optional[dict[str, str]] = None,
    path: str = "/",
    method: str = "POST",
    event_id: str = "event-1",
    **extra: Any,
) -> dict[str, Any]:
    """An event map as the Go processor encodes it (both content-type spellings, and so on)."""
    return {
        "body": body,
        "content_type": content_type,
        "content-type": content_type,
        "trigger": {"kind": "http", "name": "default-http"},
        "fields": {},
        "headers": headers or {},
        "id": event_id,
        "method": method,
        "path": path,
        "url": path,
        "size": len(body),
        "timestamp": 1_700_000_000,
        "shard_id": 0,
        "num_shards": 0,
        "type": "",
        "type_version": "",
        "version": 0,
        **extra,
    }


@dataclass
class Answer:
    """What the wrapper wrote for one event: its `l` records, `m` duration, `r` response."""

    logs: list[dict[str, Any]] = field(default_factory=list)
    duration: Optional[float] = None
    response: Any = None

    @property
    def body(self) -> bytes:
        return decode_body(self.response)


def decode_body(response: dict[str, Any]) -> bytes:
    import base64

    if response["body_encoding"] == "base64":
        return base64.b64decode(response["body"])
    assert response["body_encoding"] == "text"
    return str(response["body"]).encode()


class FakeProcessor:
    """Listens, spawns the wrapper, accepts its event then control connection."""

    def __init__(
        self,
        workdir: Path,
        code: str,
        *args: str,
        decode: bool = True,
        entry: Optional[list[str]] = None,
        env: Optional[dict[str, str]] = None,
        module: str = "handler_module",
    ) -> None:
        self.workdir = workdir
        functions = workdir / "functions"
        functions.mkdir()
        (functions / f"{module}.py").write_text(textwrap.dedent(code).lstrip())
        self.event_path = str(workdir / "event.sock")
        self.control_path = str(workdir / "control.sock")
        listeners = []
        for path in (self.event_path, self.control_path):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            listener.listen(1)
            listener.settimeout(0.1)
            listeners.append(listener)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
        environ.update(PYTHONPATH=str(functions), XDG_CACHE_HOME=str(workdir / "cache"))
        environ.update(env or {})
        command = [
            *(entry or [sys.executable, "-u", "-m", "wrapper", "nuclio"]),
            "--handler",
            f"{module}:handler",
            "--event-socket-path",
            self.event_path,
            "--control-socket-path",
            self.control_path,
            "--platform-kind",
            "local",
            "--namespace",
            "nuclio",
            "--worker-id",
            "0",
            "--trigger-kind",
            "http",
            "--trigger-name",
            "default-http",
            *(["--decode-event-strings"] if decode else []),
            *args,
        ]
        self.log_path = workdir / "wrapper.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=environ, stdout=log, stderr=subprocess.STDOUT
            )
        self.conn: Optional[socket.socket] = None
        self.control: Optional[socket.socket] = None
        try:
            self.conn = self._accept(listeners[0])
            self.control = self._accept(listeners[1])
        finally:
            for listener in listeners:
                listener.close()
        self.conn.settimeout(60)
        self.control.settimeout(60)
        self.lines = self.conn.makefile("rb")
        self.control_lines = self.control.makefile("rb")

    def _accept(self, listener: socket.socket) -> socket.socket:
        deadline = time.monotonic() + 30
        while True:  # accept before looking at the process: a connection made by a wrapper
            try:  # that exited since (an init failure) waits in the backlog
                return listener.accept()[0]
            except socket.timeout:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    break
        code = self.process.poll()
        raise AssertionError(f"the wrapper did not connect (exit {code}): {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def read_line(self) -> bytes:
        line = self.lines.readline()
        if not line:
            code = self.process.wait(30)
            raise EOFError(f"the wrapper closed the event socket (exit {code}): {self.output()}")
        return line

    def start(self) -> list[dict[str, Any]]:
        """Wait for `s` (the logs sent before it are returned) and `wrapperInitialized`."""
        logs = []
        while (line := self.read_line()) != b"s\n":
            assert line[:1] == b"l", line
            logs.append(json.loads(line[1:]))
        control = json.loads(self.control_lines.readline())
        assert control == {"kind": "wrapperInitialized", "attributes": {"ready": "true"}}
        return logs

    def send_frame(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">i", len(payload)))  # two writes, as Go does
        self.conn.sendall(payload)

    def send(self, message: Any) -> None:
        self.send_frame(msgpack.packb(message, use_bin_type=True))

    def receive(self) -> Answer:
        """Lines up to and including the next `r`."""
        answer = Answer()
        while True:
            line = self.read_line()
            kind, data = line[:1], json.loads(line[1:])
            if kind == b"l":
                answer.logs.append(data)
            elif kind == b"m":
                answer.duration = data["duration"]
            elif kind == b"r":
                answer.response = data
                return answer
            else:
                raise AssertionError(f"unexpected line {line!r}")

    def call(self, message: Any) -> Answer:
        self.send(message)
        return self.receive()

    def wait_for_log(self, text: str) -> dict[str, Any]:
        """Read `l` lines until one whose message holds `text`."""
        while True:
            line = self.read_line()
            assert line[:1] == b"l", f"expected a log line, got {line!r}"
            record = json.loads(line[1:])
            if text in record["message"]:
                return dict(record)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def hang_up(self) -> None:
        """Close the event connection, as a processor that stops does."""
        self.lines.close()
        if self.conn is not None:
            self.conn.close()

    def close(self) -> None:
        self.hang_up()
        self.control_lines.close()
        for sock in (self.conn, self.control):
            if sock is not None:
                sock.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Callable[..., FakeProcessor]]:
    started: list[FakeProcessor] = []

    def start(code: str, *args: str, ready: bool = True, **kw: Any) -> FakeProcessor:
        workdir = tmp_path / f"worker{len(started)}"
        workdir.mkdir()
        fake = FakeProcessor(workdir, code, *args, **kw)
        started.append(fake)
        if ready:
            fake.start()
        return fake

    yield start
    for fake in started:
        fake.close()


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)

"""A real `fn-wrapper serve` (gunicorn) started by the test on free 127.0.0.1 ports."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]

ONE_PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5Er"
    "kJggg=="
)
"""A 1x1 PNG, base64: an image for a served function to answer with."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """A running `fn-wrapper serve` subprocess and helpers to talk to it."""

    def __init__(
        self,
        code: str,
        workdir: Path,
        *args: str,
        env: Optional[dict[str, str]] = None,
        source: Optional[list[str]] = None,
    ):
        """Serve `code` as main.py, or (`source`: source flags) code from elsewhere."""
        self.workdir = workdir
        if source is None:
            (workdir / "main.py").write_text(textwrap.dedent(code).lstrip())
            source = ["--code-src", str(workdir / "main.py")]
        self.port, self.admin_port = free_port(), free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
        environ.update(
            XDG_CACHE_HOME=str(workdir / "cache"),
            STATE_DIR=str(workdir),
            TMPDIR=str(workdir),
            **(env or {}),
        )
        self.log_path = workdir / "server.log"
        with self.log_path.open("wb") as log:  # a file, never a pipe that could fill up
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wrapper",
                    "serve",
                    *source,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--admin-port",
                    str(self.admin_port),
                    "--log-format",
                    "json",
                    *args,
                ],
                cwd=ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: teardown stops workers too
            )

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Optional[dict[str, str]] = None,
        admin: bool = False,
        timeout: float = 30,
    ) -> tuple[int, dict[str, str], bytes]:
        port = self.admin_port if admin else self.port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, **kw)

    def ready(self) -> bool:
        try:
            return self.get("/ready", admin=True, timeout=2)[0] == 200
        except OSError:
            return False

    def wait(self, condition: Callable[[], bool], seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; server log: {self.stderr()}")
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        text = self.get("/metrics", admin=True)[2].decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def close(self) -> None:
        """A graceful stop of the whole group first (the server removes its state folder), then
        a kill of what is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(code: str, *args: str, ready: bool = True, **kw: Any) -> Served:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        served = Served(code, workdir, *args, **kw)
        started.append(served)
        if ready:
            served.wait(served.ready)
        return served

    yield start
    for served in started:
        served.close()

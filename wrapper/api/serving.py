"""A serve run from the Python API: the serve door on free 127.0.0.1 ports, ready when it
returns, `invoke()` taking `requests`' keyword arguments, stopped by `stop()` or at exit."""

from __future__ import annotations

import atexit
import json as jsonlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional

from wrapper.api.runs import LocalRun, RunFailed
from wrapper.errors import SpecError

if TYPE_CHECKING:
    from wrapper.api.functions import Function

START_TIMEOUT = 120.0
"""Seconds a serve run may take to answer /ready (source fetched, every worker's init)."""

STOP_TIMEOUT = 40.0
"""Seconds `stop()` waits for the door to drain (its graceful timeout is 30 s), then kills."""

INVOKE_ARGUMENTS = ("json", "data", "params", "headers", "timeout")

_RUNNING: weakref.WeakSet[ServeRun] = weakref.WeakSet()


@dataclass(frozen=True)
class Response:
    """What the function answered, with `requests`' names (header names in lower case)."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class ServeRun(LocalRun):
    """The serve door running the function; a context manager that stops it on exit."""

    action = "serve"

    def __init__(self, function: Function, document: dict[str, Any]) -> None:
        super().__init__(function, document)
        self.port, self.admin_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def begin(self) -> None:
        """Start the door; return once /ready answers, or raise with the door's message."""
        workers = os.environ.get("FN_WRAPPER_WORKERS") or "1"
        self.start(
            "serve", *self.store_flags(), "--host", "127.0.0.1", "--port", str(self.port),
            "--admin-port", str(self.admin_port), "--workers", workers, new_session=True,
        )  # fmt: skip
        _RUNNING.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while not self._ready():
            code = self.process.poll()
            if code is not None:
                raise RunFailed(f"serve of {self.function.name!r}: {self.failure()}", code)
            if time.monotonic() > deadline:
                self.stop()
                raise RunFailed(
                    f"serve of {self.function.name!r} was not ready in {START_TIMEOUT:.0f} s: "
                    f"{self.failure()}",
                    1,
                )
            time.sleep(0.01)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=5):
                return True
        except (OSError, urllib.error.URLError):
            return False

    @property
    def status(self) -> SimpleNamespace:
        """RUNNING while the door serves (at `service.url`), else STOPPED."""
        running = self.process is not None and self.process.poll() is None
        state = "RUNNING" if running else "STOPPED"
        return SimpleNamespace(state=state, service={"url": self.url.removeprefix("http://")})

    def invoke(self, method: str = "POST", url: Optional[str] = None, **kwargs: Any) -> Response:
        """One request to the function, as DigitalHub's `run.invoke`: GET unless `data` or
        `json` is given; `url` must start with the service's; `params`, `headers`,
        `timeout` (default 60 s) as `requests` takes them."""
        other = sorted(set(kwargs) - set(INVOKE_ARGUMENTS))
        if other:
            raise SpecError(
                f"invoke({other[0]}=…): not supported (arguments: {', '.join(INVOKE_ARGUMENTS)})"
            )
        base = self.url.removeprefix("http://")
        if url is None:
            url = self.url
        elif not url.removeprefix("http://").removeprefix("https://").startswith(base):
            raise SpecError(f"invoke(url={url!r}): it must start with the service URL {base}")
        if "data" not in kwargs and "json" not in kwargs:
            method = "GET"
        body, headers = _body(kwargs.get("data"), kwargs.get("json"))
        headers.update(kwargs.get("headers") or {})
        params = kwargs.get("params")
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        request = urllib.request.Request(url, data=body, headers=headers, method=method.upper())
        try:
            with urllib.request.urlopen(request, timeout=kwargs.get("timeout") or 60) as answer:
                return Response(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, _lower(error.headers), error.read())

    def stop(self) -> None:
        """Drain and stop the door (SIGTERM, as a platform stops it); kill what is left."""
        _RUNNING.discard(self)
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> ServeRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _body(data: Any, json: Any) -> tuple[Optional[bytes], dict[str, str]]:
    """The request body and its content type, as `requests` makes them."""
    if json is not None:
        return jsonlib.dumps(json).encode(), {"Content-Type": "application/json"}
    if isinstance(data, dict):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return urllib.parse.urlencode(data, doseq=True).encode(), form
    if isinstance(data, str):
        return data.encode(), {}
    return data, {}


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@atexit.register
def _stop_all() -> None:
    """No serve run outlives the process that started it."""
    for served in list(_RUNNING):
        served.stop()

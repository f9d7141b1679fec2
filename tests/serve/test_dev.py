"""`fn-wrapper serve --dev`: one process, no fork, so `breakpoint()` in a handler opens pdb on
the terminal (a real pseudo-terminal here, driven as a person would type)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import descendants
from tests.serve.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

HANDLER = """
def handler(context, event):
    who = event.body.decode()
    breakpoint()
    return f"hi {who} from worker {context.worker_id}"
"""


class Terminal:
    """The server's terminal: what it printed, and what is typed into it."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.seen = b""

    def expect(self, text: bytes, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal: {self.seen[-2000:]!r}"
            if select.select([self.master], [], [], left)[0]:
                self.seen += os.read(self.master, 65536)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")


def test_breakpoint_opens_the_debugger_on_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(HANDLER)
    port, admin = free_port(), free_port()
    terminal = Terminal()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONBREAKPOINT="pdb.set_trace")
    server = subprocess.Popen(
        [sys.executable, "-m", "wrapper", "serve", "--code-src", str(tmp_path / "main.py"),
         "--dev", "--host", "127.0.0.1", "--port", str(port), "--admin-port", str(admin),
         "--log-format", "text"],
        cwd=ROOT, env=environ, stdin=terminal.slave, stdout=terminal.slave,
        stderr=terminal.slave, start_new_session=True,
    )  # fmt: skip
    answers: list[bytes] = []
    try:
        terminal.expect(b"from this process alone")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"Ada")
        caller = threading.Thread(
            target=lambda: answers.append(urllib.request.urlopen(request, timeout=60).read())
        )
        caller.start()
        terminal.expect(b"(Pdb)")
        terminal.type("p who")
        terminal.expect(b"'Ada'")
        terminal.type("who = 'Grace'")
        terminal.type("c")
        caller.join(30)
        assert answers == [b"hi Grace from worker 0"]
        assert descendants(server.pid) == []  # no worker processes: no fork
    finally:
        server.terminate()
        server.wait(30)
        os.close(terminal.master)
        os.close(terminal.slave)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reload"], "one process cannot replace its workers"),
        (["--workers", "2"], "one process, one worker (not --workers 2)"),
    ],
)
def test_dev_refuses_what_needs_workers(tmp_path: Path, extra: list[str], message: str) -> None:
    (tmp_path / "main.py").write_text("def handler(context, event):\n    return 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", "serve", "--code-src", str(tmp_path / "main.py"),
         "--dev", *extra, "--port", str(free_port()), "--admin-port", str(free_port())],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2 and f"--dev: {message}" in result.stderr, result.stderr

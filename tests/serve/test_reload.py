"""`fn-wrapper serve --reload`: a served function's file edited on disk; the next requests
are answered by the new code, a broken edit keeps the old code serving and says why, and no
request fails across the reloads (a real gunicorn, a client sending all along)."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.serve.conftest import Served

pytestmark = pytest.mark.slow

VERSION = "def handler(context, event):\n    return '{version} ' + str(context.worker_id)\n"


class Client(threading.Thread):
    """Sends GET / over and over; keeps every answer and every failure."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.answers, self.failures = port, [], []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode()
                if response.status != 200:
                    self.failures.append(f"{response.status} {body}")
                self.answers.append(body)
            except OSError as exc:
                self.failures.append(repr(exc))
            finally:
                connection.close()

    def wait_for(self, version: str, seconds: float = 30) -> None:
        """Until only `version` answers (the old workers retired): 20 answers in a row."""
        deadline = time.monotonic() + seconds
        while not (
            len(self.answers) >= 20 and all(a.startswith(version) for a in self.answers[-20:])
        ):
            assert time.monotonic() < deadline, f"no {version!r}: last {self.answers[-3:]}"
            time.sleep(0.05)


def test_edits_reload_the_workers_and_broken_ones_keep_the_old_code(
    tmp_path: Path, start_server: Callable[..., Served]
) -> None:
    source = tmp_path / "function"
    source.mkdir()
    main = source / "main.py"
    main.write_text(VERSION.format(version="v1"))
    served = start_server("", "--reload", "--workers", "2", source=["--code-src", str(source)])
    client = Client(served.port)
    client.start()
    try:
        client.wait_for("v1")
        main.write_text(VERSION.format(version="v2"))
        client.wait_for("v2")
        served.wait(lambda: served.stderr().count("was sent SIGTERM") == 2)  # both retired

        main.write_text("def handler(context, event):\n    return 'v3' +\n")  # a syntax error
        served.wait(lambda: "reload: the new code cannot serve" in served.stderr())
        seen = len(client.answers)
        time.sleep(1)
        assert all(answer.startswith("v2") for answer in client.answers[seen:])
        main.write_text(  # it imports, but its init fails
            "def init_context(context):\n    raise RuntimeError('no database')\n\n"
            + VERSION.format(version="v4")
        )
        served.wait(lambda: "RuntimeError: no database" in served.stderr())
        assert client.answers[-1].startswith("v2")

        main.write_text(VERSION.format(version="v5"))  # fixed: the next save serves
        client.wait_for("v5")
    finally:
        client.done.set()
        client.join(30)
    assert client.failures == []
    ids = {answer.split()[1] for answer in client.answers if answer.startswith("v5")}
    assert ids <= {"0", "1"}  # new workers took the ids of those they replaced
    errors = [line["message"] for line in served.log_lines() if line["level"] == "error"]
    assert [e.split(": ", 1)[0] for e in errors] == ["reload"] * 2, errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (["--code", "def handler(context, event):\n    return 1\n"], "not inline code"),
        (["--code-src", "https://code.local/main.py"], "not code_src 'https://code.local/main.py'"),
    ],
)
def test_reload_watches_local_code_only(
    start_server: Callable[..., Served], source: list[str], message: str
) -> None:
    served = start_server("", "--reload", source=source, ready=False)
    assert served.process.wait(60) == 2
    assert f"--reload: watches a local code_src (a folder or a file), {message}" in served.stderr()


def test_reload_and_preload_do_not_go_together(start_server: Callable[..., Served]) -> None:
    served = start_server("def handler(context, event):\n    return 1\n", "--reload", "--preload",
                          ready=False)  # fmt: skip
    assert served.process.wait(60) == 2
    assert "--reload: new workers load the new code; --preload loads it once" in served.stderr()

"""Shared fixtures: isolated code caches, source trees written by tests, the CLI as a subprocess,
entity stores (the local one, and S3 on moto's server), and a folder served over HTTP."""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tests.moto_s3 import moto_server, point_aws_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own code cache (XDG_CACHE_HOME), never the user's."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for name in [n for n in os.environ if n.startswith("FN_WRAPPER_")]:
        monkeypatch.delenv(name)
    return cache


@pytest.fixture
def restore_imports() -> Iterator[None]:
    """For tests that import user modules: forget them afterwards, so tests stay independent."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """For tests that configure logging: the root logger's handlers and level put back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


WriteTree = Callable[[dict[str, str]], Path]


@pytest.fixture
def write_tree(tmp_path: Path) -> WriteTree:
    """Write `{relative path: source text}` (dedented) under a fresh folder and return it."""
    counter = iter(range(10_000))

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / f"src{next(counter)}"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        root.mkdir(exist_ok=True)
        return root

    return write


RunCLI = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCLI:
    """Run `python -m wrapper ARGS` in a subprocess with a clean FN_WRAPPER_* environment."""

    def run(
        *args: str,
        env: Optional[dict[str, str]] = None,
        input: Optional[bytes] = None,
        cwd: Optional[Path] = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
        environ["XDG_CACHE_HOME"] = str(tmp_path / "cli-cache")
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "wrapper", *args],
            capture_output=True,
            input=input,
            env=environ,
            cwd=cwd or ROOT,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="module")
def s3_server() -> Iterator[tuple[str, Any]]:
    """moto's S3 server in a thread, and the tests' own client to it."""
    with moto_server() as running:
        yield running


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(params=["local", "s3"])
def store_uri(
    request: pytest.FixtureRequest,
    store_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """The local store, or a fresh bucket on moto's server (subprocesses inherit the AWS
    variables pointing at it)."""
    if request.param == "local":
        return str(store_root)
    url, client = request.getfixturevalue("s3_server")
    point_aws_at(url, monkeypatch, tmp_path)
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Serves tmp_path/www over HTTP on 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            """No request lines on the test's stderr."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, nearest first (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found

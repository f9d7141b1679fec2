"""The CLI fetches remote code with the limits its flags and twins set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CODE = b"def handler(context, event):\n    return 'remote ' + event.method\n"


@pytest.fixture
def code_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(CODE)))
            self.end_headers()
            self.wfile.write(CODE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/code/func.py"
    server.shutdown()
    server.server_close()


def test_invoke_runs_code_fetched_over_http(run_cli, code_url: str) -> None:
    result = run_cli("invoke", "--code-src", code_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"remote GET"


def test_the_download_limit_flag_and_twin_apply(run_cli, code_url: str) -> None:
    result = run_cli("invoke", "--code-src", code_url, "--max-download-size", "16")
    assert result.returncode == 3
    assert b"exceed max_download_bytes=16" in result.stderr
    result = run_cli("invoke", "--code-src", code_url, env={"FN_WRAPPER_MAX_DOWNLOAD_SIZE": "1KiB"})
    assert result.returncode == 0, result.stderr

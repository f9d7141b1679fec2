"""The build's `pip download` within the download limits, against a real package index on
127.0.0.1 (PEP 503 simple pages): a total deadline over whatever a server drips, a size cap
while downloading, memory that stays flat, and the proxy and trust settings users set."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

import pytest

from wrapper.build.runtimes import runtime
from wrapper.build.wheels import WheelError, download_wheels
from wrapper.sources.settings import FetchLimits

WHEEL_NAME = "tinypkg-1.0-py3-none-any.whl"
Responder = Callable[[BaseHTTPRequestHandler], None]


def wheel_bytes() -> bytes:
    """A minimal pure-Python wheel of tinypkg 1.0 (the same bytes each time)."""
    buffer = io.BytesIO()
    info = "tinypkg-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in {
            "tinypkg/__init__.py": "VALUE = 1\n",
            f"{info}/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
            f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
            f"{info}/RECORD": "",
        }.items():
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


WHEEL = wheel_bytes()


class Index:
    """A package index on 127.0.0.1 serving tinypkg: its simple page, and its wheel answered
    by `wheel` (the file itself unless a test sets a misbehaving responder)."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.wheel: Union[bytes, Responder] = WHEEL
        self.page: Optional[Responder] = None
        self.paths: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                index.paths.append(self.path)
                if index.page is not None:
                    index.page(self)
                elif self.path.rstrip("/") == "/simple/tinypkg":
                    link = f'<a href="/files/{WHEEL_NAME}">{WHEEL_NAME}</a>'
                    self._answer(f"<!DOCTYPE html><html><body>{link}</body></html>".encode())
                elif self.path == f"/files/{WHEEL_NAME}":
                    if callable(index.wheel):
                        index.wheel(self)
                    else:
                        self._answer(index.wheel)
                else:
                    self.send_error(404)

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/simple"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Proxy:
    """A forward proxy on 127.0.0.1 that counts what goes through it: absolute-URI GETs
    (http) are fetched for the client, CONNECTs (https) tunnelled."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.hosts: dict[str, str] = {}
        """Host names only the proxy knows (`pypi.example.invalid`: `127.0.0.1:PORT`)."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                proxy.requests.append(f"GET {self.path}")
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection(proxy.hosts.get(target.netloc, target.netloc))
                upstream.request("GET", target.path or "/", headers={"Host": target.netloc})
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type") or "")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def do_CONNECT(self) -> None:
                proxy.requests.append(f"CONNECT {self.path}")
                host, port = self.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                self.send_response(200, "Connection established")
                self.end_headers()
                ends = [self.connection, upstream]
                with contextlib.suppress(OSError), upstream:
                    while True:
                        readable, _, _ = select.select(ends, [], [], 10)
                        if not readable:
                            return
                        for end in readable:
                            data = end.recv(65536)
                            if not data:
                                return
                            (upstream if end is self.connection else self.connection).sendall(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _pip_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip reads no configuration, cache, proxy or trust setting of the user's."""
    for name in list(os.environ):
        if name.startswith("PIP_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Index]:
    running = Index()
    monkeypatch.setenv("PIP_INDEX_URL", running.url)
    yield running
    running.stop()


@pytest.fixture
def tls_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Index, Path]]:
    """An HTTPS index whose certificate a private CA signed; the CA bundle's path."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    running = Index(context)
    monkeypatch.setenv("PIP_INDEX_URL", running.url)
    yield running, bundle
    running.stop()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    running = Proxy()
    yield running
    running.stop()


def download(tmp_path: Path, **limits: Any) -> list[str]:
    tmp_path.mkdir(exist_ok=True)
    listed = tmp_path / "requirements.txt"
    listed.write_text("tinypkg==1.0\n")
    destination = tmp_path / "wheels"
    destination.mkdir(exist_ok=True)
    return download_wheels(listed, destination, runtime("PYTHON3_11"), limits=FetchLimits(**limits))


# --- a well-behaved index, through a proxy or not, trusted or not ---------------------------


def test_wheels_come_from_the_index(index: Index, tmp_path: Path) -> None:
    assert download(tmp_path) == [WHEEL_NAME]
    assert (tmp_path / "wheels" / WHEEL_NAME).read_bytes() == WHEEL
    assert f"/files/{WHEEL_NAME}" in index.paths


def test_http_proxy_is_honoured(
    index: Index, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's name resolves nowhere but in the proxy: the wheel came through it."""
    proxy.hosts["pypi.example.invalid"] = f"127.0.0.1:{index.port}"
    monkeypatch.setenv("PIP_INDEX_URL", "http://pypi.example.invalid/simple")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "pypi.example.invalid")  # plain http: say it is fine
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert download(tmp_path) == [WHEEL_NAME]
    assert f"GET http://pypi.example.invalid/files/{WHEEL_NAME}" in proxy.requests


def test_https_proxy_and_no_proxy_are_honoured(
    tls_index: tuple[Index, Path], proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, bundle = tls_index
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert download(tmp_path / "proxied") == [WHEEL_NAME]
    assert proxy.requests and set(proxy.requests) == {f"CONNECT 127.0.0.1:{index.port}"}
    through = len(proxy.requests)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert download(tmp_path / "direct") == [WHEEL_NAME]
    assert len(proxy.requests) == through


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"])
def test_the_trust_settings_reach_pip(
    tls_index: tuple[Index, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    _, bundle = tls_index
    monkeypatch.setenv(variable, str(bundle))
    assert download(tmp_path) == [WHEEL_NAME]


def test_an_untrusted_certificate_is_named(
    tls_index: tuple[Index, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = tls_index
    monkeypatch.setenv("PIP_INDEX_URL", index.url.replace("://", "://user:s3cret@"))
    monkeypatch.setenv("PIP_RETRIES", "1")
    with pytest.raises(WheelError) as caught:
        download(tmp_path)
    assert caught.value.message == (
        f"requirements: the TLS certificate of {index.url.replace('://', '://***@')}/tinypkg/"
        " is not trusted (unable to get local issuer certificate): name its CA bundle in"
        " SSL_CERT_FILE, REQUESTS_CA_BUNDLE or PIP_CERT"
    )


# --- a misbehaving index: cut off within the deadline, memory flat ---------------------------

LIMITS_CHILD = """
import json, resource, sys, time
from pathlib import Path
from wrapper.build.runtimes import runtime
from wrapper.build.wheels import WheelError, download_wheels
from wrapper.sources.settings import FetchLimits

def peak():  # own peak RSS, KiB
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

folder = Path(sys.argv[1])
(folder / "requirements.txt").write_text("tinypkg==1.0\\n")
(folder / "wheels").mkdir()
limits = FetchLimits(total_timeout=2, read_timeout=5, max_download_bytes=16 * 1024 * 1024)
started = time.monotonic()
try:
    download_wheels(folder / "requirements.txt", folder / "wheels", runtime("PYTHON3_11"),
                    limits=limits)
    error = None
except WheelError as exc:
    error = exc.message
seconds = time.monotonic() - started
# the peak RSS of the largest reaped child, KiB: pip's (or more: a fork counts our pages)
pip = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"error": error, "seconds": seconds, "peak_kib": peak(), "pip_kib": pip}))
"""


def _drip_headers(handler: BaseHTTPRequestHandler) -> None:
    """Headers one byte each 0.3 s, for 15 s (an unbounded client fails late, not never)."""
    with contextlib.suppress(OSError):  # until the client hangs up
        for byte in b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 26:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.3)


def _stall_mid_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"PK" + b"#" * 1000)
    handler.wfile.flush()
    time.sleep(30)


def _endless_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    chunk = b"#" * 65536
    with contextlib.suppress(OSError):  # until the client hangs up
        while True:
            handler.wfile.write(chunk)


def _endless_index_page(handler: BaseHTTPRequestHandler) -> None:
    """The wheel is fine: the simple page never ends (pip reads a page whole, in memory)."""
    if handler.path.startswith("/simple"):
        _endless_body(handler)
        return
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(WHEEL)))
    handler.end_headers()
    handler.wfile.write(WHEEL)


TIMEOUT = r"the download took longer than 2 s \(.*FN_WRAPPER_DOWNLOAD_TIMEOUT\)$"
MiB = 1024  # in KiB, as VmHWM and ru_maxrss count


@pytest.mark.parametrize(
    ("responder", "expected", "pip_peak_kib"),
    [
        (_drip_headers, TIMEOUT, 100 * MiB),
        (_stall_mid_body, TIMEOUT, 100 * MiB),
        (_endless_body, r"larger than max_download_bytes=16777216 \(.*SIZE\)$", 100 * MiB),
        # pip's heap may reach the cap (16 MiB) + PIP_MEMORY (256 MiB); its peak RSS adds the
        # files it maps (~20 MiB) and what a loopback server sends within a poll (0.05 s)
        (_endless_index_page, r"pip's memory grew past max_download_bytes=16777216", 384 * MiB),
    ],
    ids=["drip-headers", "stall-mid-body", "endless-body", "endless-index-page"],
)
def test_a_misbehaving_index_is_cut_off_within_the_deadline(
    index: Index,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    responder: Responder,
    expected: str,
    pip_peak_kib: int,
) -> None:
    if responder is _endless_index_page:
        index.page = responder
    else:
        index.wheel = responder
    monkeypatch.setenv("PIP_INDEX_URL", index.url.replace("://", "://user:pa55@"))
    out = tmp_path / "child.json"
    with out.open("w") as stdout:
        child = subprocess.Popen([sys.executable, "-c", LIMITS_CHILD, str(tmp_path)], stdout=stdout)
        assert child.wait(timeout=60) == 0
    outcome = json.loads(out.read_text())
    error = outcome["error"]
    assert error and error.startswith("requirements: ") and re.search(expected, error), outcome
    assert "pa55" not in error and "\n" not in error
    print(
        f"{responder.__name__}: {outcome['seconds']:.2f} s, peak {outcome['peak_kib']} KiB,"
        f" pip peak {outcome['pip_kib']} KiB"
    )
    assert outcome["seconds"] < 3, outcome
    assert outcome["peak_kib"] < 100 * MiB, outcome
    assert outcome["pip_kib"] < pip_peak_kib, outcome


def test_a_server_silent_longer_than_read_timeout_is_named(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's socket timeout is read_timeout: well before the total deadline."""
    index.wheel = _stall_mid_body
    monkeypatch.setenv("PIP_RETRIES", "0")  # no retries, no resumes: one wait
    monkeypatch.setenv("PIP_RESUME_RETRIES", "0")
    started = time.monotonic()
    with pytest.raises(WheelError) as caught:
        download(tmp_path, read_timeout=1, total_timeout=20)
    seconds = time.monotonic() - started
    message = caught.value.message
    assert message.startswith(f"requirements: {index.url[:-7]}/files/{WHEEL_NAME}: "), message
    assert "stayed silent for 1 s (--read-timeout, FN_WRAPPER_READ_TIMEOUT)" in message
    assert seconds < 5, seconds


def test_an_unreachable_proxy_is_named(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip names the failure when it retries
    with pytest.raises(WheelError) as caught:
        download(tmp_path)
    assert caught.value.message == (
        f"requirements: cannot reach the proxy 127.0.0.1:{port} (HTTPS_PROXY, HTTP_PROXY) for"
        f" {index.url}/tinypkg/: Connection refused"
    )


def test_the_builds_limits_reach_pip(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_context passes the build's parsed limits (--download-timeout) on to pip."""
    from wrapper.build.context import BuildPlan, ContextSettings, write_context
    from wrapper.plan import FunctionPlan
    from wrapper.sources.settings import SourceSettings

    monkeypatch.setenv("PIP_RETRIES", "0")
    index.wheel = _drip_headers
    code = "def handler(context, event):\n    return 1\n"
    function = FunctionPlan(name="hello", python_version="PYTHON3_11", handler="handler", code=code)
    plan = BuildPlan(function, ("tinypkg",))
    limits = FetchLimits(total_timeout=1)
    settings = ContextSettings(SourceSettings(cache_dir=tmp_path / "cache", limits=limits))
    with pytest.raises(WheelError, match=r"the download took longer than 1 s"):
        write_context(plan, tmp_path / "context", settings)
    assert not (tmp_path / "context").exists()


def test_without_parsed_limits_the_environment_ones_apply(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_RETRIES", "0")
    index.wheel = _drip_headers
    monkeypatch.setenv("FN_WRAPPER_DOWNLOAD_TIMEOUT", "1")
    listed = tmp_path / "requirements.txt"
    listed.write_text("tinypkg\n")
    with pytest.raises(WheelError, match=r"the download took longer than 1 s"):
        download_wheels(listed, tmp_path, runtime("PYTHON3_11"))

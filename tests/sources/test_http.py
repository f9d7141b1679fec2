"""http(s) sources against real servers on 127.0.0.1: files, archives, limits, redirects, cache."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import socket
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional, Union

import pytest

from tests.raw_http import Proxy
from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.loader import load_code
from wrapper.sources import SourceTree, materialise_source
from wrapper.sources.archive import ArchiveLimits
from wrapper.sources.settings import FetchLimits, SourceSettings

CODE = b"def handler(context, event):\n    return 'from http'\n"
Responder = Callable[[BaseHTTPRequestHandler], None]
Route = Union[bytes, tuple[int, dict[str, str], bytes], Responder]


class Server:
    """A real HTTP(S) server on 127.0.0.1 whose routes the test sets; it records each request."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self._answer(404, {}, b"not found")
                elif callable(route):
                    route(self)
                elif isinstance(route, bytes):
                    self._answer(200, {}, route)
                else:
                    self._answer(*route)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def gets(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].split("?")[0] == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """An HTTPS server whose private CA the client trusts through SSL_CERT_FILE."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    running = Server(context)
    yield running
    running.stop()


def settings(tmp_path: Path, **limits: Any) -> SourceSettings:
    archive = {k: limits.pop(k) for k in ("max_members", "max_unpacked_bytes") if k in limits}
    return SourceSettings(
        cache_dir=tmp_path / "cache",
        limits=FetchLimits(**limits),
        archive_limits=ArchiveLimits(**archive),
    )


def fetch(code_src: str, tmp_path: Path, **limits: Any) -> SourceTree:
    source = SimpleNamespace(code_src=code_src, code=None, base64=None)
    return materialise_source(source, settings(tmp_path, **limits))


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- what is fetched ------------------------------------------------------------------------


def test_a_python_file_is_a_one_file_source(server: Server, tmp_path: Path) -> None:
    server.routes["/code/func.py"] = CODE
    tree = fetch(server.url("/code/func.py"), tmp_path)
    assert tree.single_file == "func.py"
    assert (tree.root / "func.py").read_bytes() == CODE
    assert load_code(tree, "handler").handler(None, None) == "from http"


@pytest.mark.parametrize("form", ["plain", "zip+", "query"])
def test_a_zip_archive_is_unpacked(server: Server, tmp_path: Path, form: str) -> None:
    server.routes["/fn.zip"] = zip_of(
        {
            "pkg/__init__.py": b"",
            "pkg/util.py": b"X = 'relative'\n",
            "pkg/api.py": b"from .util import X\ndef handler(c, e):\n    return X\n",
        }
    )
    url = {
        "plain": server.url("/fn.zip"),
        "zip+": "zip+" + server.url("/fn.zip"),
        "query": server.url("/fn.zip?version=3"),
    }[form]
    tree = fetch(url, tmp_path)
    assert load_code(tree, "pkg.api:handler").handler(None, None) == "relative"


def test_a_tar_gz_archive_is_unpacked(server: Server, tmp_path: Path) -> None:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("fn/main.py")
        info.size = len(CODE)
        archive.addfile(info, io.BytesIO(CODE))
    server.routes["/download/fn.tgz"] = buffer.getvalue()
    tree = fetch("tar+" + server.url("/download/fn.tgz"), tmp_path)
    assert (tree.root / "main.py").read_bytes() == CODE  # rooted inside the lone folder


def test_forced_zip_that_is_not_a_zip_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/fn.zip"] = CODE
    with pytest.raises(SourceError, match=r"zip\+ names a zip archive, the content is not an"):
        fetch("zip+" + server.url("/fn.zip"), tmp_path)


def test_https_with_a_private_ca(tls_server: Server, tmp_path: Path) -> None:
    tls_server.routes["/func.py"] = CODE
    assert (fetch(tls_server.url("/func.py"), tmp_path).root / "func.py").read_bytes() == CODE


def test_https_with_an_untrusted_certificate_is_refused(
    tls_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    tls_server.routes["/func.py"] = CODE
    with pytest.raises(SourceError, match="TLS certificate not trusted"):
        fetch(tls_server.url("/func.py"), tmp_path)


def test_requests_ca_bundle_is_trusted_too(
    tls_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", os.environ.pop("SSL_CERT_FILE"))
    tls_server.routes["/func.py"] = CODE
    assert (fetch(tls_server.url("/func.py"), tmp_path).root / "func.py").read_bytes() == CODE
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(SourceError, match=r"REQUESTS_CA_BUNDLE='.*missing.pem': not a readable"):
        fetch(tls_server.url("/func.py"), tmp_path / "again")


def test_https_goes_through_the_connect_proxy_https_proxy_names(
    tls_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    proxy = Proxy()
    monkeypatch.setenv("https_proxy", proxy.url)
    tls_server.routes["/func.py"] = CODE
    try:
        assert (fetch(tls_server.url("/func.py"), tmp_path).root / "func.py").read_bytes() == CODE
    finally:
        proxy.close()
    assert [seen[:2] for seen in proxy.seen] == [("CONNECT", f"127.0.0.1:{tls_server.port}")]


# --- integrity and cache --------------------------------------------------------------------


def test_sha256_pin_accepts_the_right_content_and_refuses_another(
    server: Server, tmp_path: Path
) -> None:
    server.routes["/func.py"] = CODE
    right = hashlib.sha256(CODE).hexdigest()
    assert fetch(server.url(f"/func.py#sha256={right}"), tmp_path).single_file == "func.py"
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(SourceError, match=f"content sha256 is {right}, the pin says {wrong}"):
        fetch(server.url(f"/func.py#sha256={wrong}"), tmp_path / "other")
    assert not list((tmp_path / "other" / "cache").glob("file/*"))


def test_a_pinned_tree_is_reused_without_the_network(server: Server, tmp_path: Path) -> None:
    server.routes["/fn.zip"] = zip_of({"main.py": CODE})
    pin = hashlib.sha256(server.routes["/fn.zip"]).hexdigest()  # type: ignore[arg-type]
    url = server.url(f"/fn.zip#sha256={pin}")
    first = fetch(url, tmp_path)
    server.stop()
    assert fetch(url, tmp_path) == first


def test_etag_revalidation_reuses_then_refetches(server: Server, tmp_path: Path) -> None:
    versions = {"etag": '"v1"', "body": CODE}

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == versions["etag"]:
            handler._answer(304, {"ETag": versions["etag"]}, b"")  # type: ignore[attr-defined]
        else:
            handler._answer(200, {"ETag": versions["etag"]}, versions["body"])  # type: ignore[attr-defined]

    server.routes["/func.py"] = respond
    first = fetch(server.url("/func.py"), tmp_path)
    again = fetch(server.url("/func.py"), tmp_path)
    assert again == first
    assert server.gets("/func.py")[1]["headers"]["If-None-Match"] == '"v1"'
    versions.update(etag='"v2"', body=CODE.replace(b"from http", b"changed"))
    changed = fetch(server.url("/func.py"), tmp_path)
    assert changed.root != first.root
    assert b"changed" in (changed.root / "func.py").read_bytes()


def test_last_modified_revalidation(server: Server, tmp_path: Path) -> None:
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"

    def respond(handler: BaseHTTPRequestHandler) -> None:
        status = 304 if handler.headers.get("If-Modified-Since") == stamp else 200
        handler._answer(status, {"Last-Modified": stamp}, b"" if status == 304 else CODE)  # type: ignore[attr-defined]

    server.routes["/func.py"] = respond
    assert fetch(server.url("/func.py"), tmp_path) == fetch(server.url("/func.py"), tmp_path)
    assert [r["headers"].get("If-Modified-Since") for r in server.gets("/func.py")] == [None, stamp]


def test_concurrent_workers_download_once(server: Server, tmp_path: Path) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.3)
        handler._answer(200, {}, CODE)  # type: ignore[attr-defined]

    server.routes["/func.py"] = slow
    pin = hashlib.sha256(CODE).hexdigest()
    results: list[SourceTree] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(fetch(server.url(f"/func.py#sha256={pin}"), tmp_path))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert len(server.gets("/func.py")) == 1


# --- limits ---------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_refused_before_reading(
    server: Server, tmp_path: Path
) -> None:
    server.routes["/big.py"] = b"#" * 5000
    with pytest.raises(SourceError, match="5000 bytes exceed max_download_bytes=1000"):
        fetch(server.url("/big.py"), tmp_path, max_download_bytes=1000)


def test_an_undeclared_oversized_body_is_cut_off_while_streaming(
    server: Server, tmp_path: Path
) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"#" * 1000)

    server.routes["/big.py"] = chunked
    with pytest.raises(SourceError, match="download larger than max_download_bytes=10000"):
        fetch(server.url("/big.py"), tmp_path, max_download_bytes=10_000)


def test_a_silent_server_times_out(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"no answer within 0\.5 s"):
            fetch(
                f"http://127.0.0.1:{listener.getsockname()[1]}/func.py", tmp_path, read_timeout=0.5
            )
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_a_trickling_server_hits_the_total_timeout(server: Server, tmp_path: Path) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b"#")
            handler.wfile.flush()
            time.sleep(0.05)

    server.routes["/slow.py"] = trickle
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"download took longer than 0\.5 s"):
        fetch(server.url("/slow.py"), tmp_path, total_timeout=0.5, read_timeout=5)
    assert time.monotonic() - started < 5


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match="Connection refused"):
        fetch(f"http://127.0.0.1:{port}/func.py", tmp_path)


def test_http_errors_are_named(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"/missing.py': HTTP 404 Not Found$"):
        fetch(server.url("/missing.py"), tmp_path)


def test_a_zip_bomb_over_http_is_refused_naming_the_source(server: Server, tmp_path: Path) -> None:
    server.routes["/bomb.zip"] = zip_of({"zeros.bin": b"\0" * (4 * 1024 * 1024)})
    with pytest.raises(UnsafeArchiveError, match=r"bomb.zip': archive unpacks to more than"):
        fetch(server.url("/bomb.zip"), tmp_path, max_unpacked_bytes=1024 * 1024)


# --- redirects and credentials --------------------------------------------------------------


def test_a_same_origin_redirect_keeps_the_credentials(server: Server, tmp_path: Path) -> None:
    server.routes["/old.py"] = (302, {"Location": "/new.py"}, b"")
    server.routes["/new.py"] = CODE
    url = server.url("/old.py").replace("://", "://user:s3cret@")
    assert fetch(url, tmp_path).single_file == "old.py"  # named as the spec names it
    assert server.gets("/new.py")[0]["headers"]["Authorization"].startswith("Basic ")


def test_a_redirect_to_another_host_carries_no_credentials(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/func.py"] = (302, {"Location": server.url("/moved.py", host="localhost")}, b"")
    server.routes["/moved.py"] = CODE
    caplog.set_level(logging.DEBUG)
    url = server.url("/func.py").replace("://", "://user:s3cret-token@")
    tree = fetch(url, tmp_path)
    assert (tree.root / "func.py").read_bytes() == CODE
    first, moved = server.requests
    assert "Authorization" in first["headers"]
    assert "Authorization" not in moved["headers"]
    assert moved["headers"]["Host"].startswith("localhost:")
    assert "s3cret-token" not in caplog.text


def test_redirect_limits_and_schemes(server: Server, tmp_path: Path) -> None:
    for hop in range(4):
        server.routes[f"/hop{hop}"] = (302, {"Location": f"/hop{hop + 1}"}, b"")
    server.routes["/hop4"] = CODE
    with pytest.raises(SourceError, match="more than max_redirects=2 redirects"):
        fetch(server.url("/hop0"), tmp_path, max_redirects=2)
    server.routes["/to-file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(SourceError, match="redirect to a file: URL refused"):
        fetch(server.url("/to-file"), tmp_path)


def test_https_to_http_redirect_is_refused(
    tls_server: Server, server: Server, tmp_path: Path
) -> None:
    server.routes["/func.py"] = CODE
    tls_server.routes["/func.py"] = (302, {"Location": server.url("/func.py")}, b"")
    with pytest.raises(SourceError, match="redirect from https to http refused"):
        fetch(tls_server.url("/func.py"), tmp_path)
    assert server.requests == []


def test_credentials_never_reach_error_messages(server: Server, tmp_path: Path) -> None:
    url = server.url("/missing.py").replace("://", "://user:hunter2@")
    with pytest.raises(SourceError) as caught:
        fetch(url, tmp_path)
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(caught.value)
    assert "***@" in str(caught.value)


def test_the_usual_proxy_variables_are_honoured(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", server.url(""))
    server.routes["http://code.example.invalid/func.py"] = CODE  # a proxy gets absolute URIs
    tree = fetch("http://code.example.invalid/func.py", tmp_path)
    assert (tree.root / "func.py").read_bytes() == CODE
    assert server.requests[0]["headers"]["Host"] == "code.example.invalid"


# --- a total deadline, also over the headers; memory stays flat ------------------------------

DEADLINE_CHILD = """
import json, sys, time
def peak():  # own peak RSS, KiB (ru_maxrss counts the forked parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from pathlib import Path
from types import SimpleNamespace
from wrapper.errors import SourceError
from wrapper.sources import materialise_source
from wrapper.sources.settings import FetchLimits, SourceSettings

from tests.raw_http import Proxy
url, cache = sys.argv[1:3]
limits = FetchLimits(total_timeout=2, read_timeout=5, max_download_bytes=64 * 1024 * 1024)
source = SimpleNamespace(code_src=url, code=None, base64=None)
started = time.monotonic()
try:
    materialise_source(source, SourceSettings(cache_dir=Path(cache), limits=limits))
    error = None
except SourceError as exc:
    error = exc.message
seconds = time.monotonic() - started
print(json.dumps({"error": error, "seconds": seconds, "peak_kib": peak()}))
"""


def _drip_headers(handler: BaseHTTPRequestHandler) -> None:
    with contextlib.suppress(OSError):  # until the client hangs up
        for byte in b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 1000:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.3)


def _stall_mid_body(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"#" * 1000)
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


@pytest.mark.parametrize(
    ("responder", "expected"),
    [
        (_drip_headers, r"download took longer than 2 s"),
        (_stall_mid_body, r"download took longer than 2 s"),
        (_endless_body, r"download (took longer than 2 s|larger than max_download_bytes)"),
    ],
    ids=["drip-headers", "stall-mid-body", "endless-body"],
)
def test_a_misbehaving_server_is_cut_off_within_the_total_deadline(
    server: Server, tmp_path: Path, responder: Responder, expected: str
) -> None:
    import json
    import re
    import subprocess
    import sys

    server.routes["/func.py"] = responder
    url = server.url("/func.py").replace("://", "://user:pa55@")
    out = tmp_path / "child.json"
    with out.open("w") as stdout:
        command = [sys.executable, "-c", DEADLINE_CHILD, url, str(tmp_path / "cache")]
        child = subprocess.Popen(command, stdout=stdout)
        assert child.wait(timeout=60) == 0
    outcome = json.loads(out.read_text())
    assert outcome["error"] and re.search(expected, outcome["error"]), outcome
    assert "pa55" not in outcome["error"] and "***@127.0.0.1" in outcome["error"]
    assert outcome["seconds"] < 3, outcome
    peak = outcome["peak_kib"]
    print(f"{responder.__name__}: {outcome['seconds']:.2f} s, peak {peak} KiB")
    assert peak < 100 * 1024, f"peak RSS {peak} KiB"


def test_a_redirect_to_ftp_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/func.py"] = (302, {"Location": "ftp://127.0.0.1/func.py"}, b"")
    with pytest.raises(SourceError, match="redirect to a ftp: URL refused"):
        fetch(server.url("/func.py"), tmp_path)

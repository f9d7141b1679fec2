"""Every read from S3 (code sources, an object or a prefix; entity content in the S3 store; a
dataitem at an s3:// object or prefix) ends within its total deadline with a clear message and
flat memory, against a raw misbehaving server on 127.0.0.1 (each read in a child whose peak
RSS is measured); boto3's own proxy (HTTP_PROXY, NO_PROXY) and trust (AWS_CA_BUNDLE) settings
are honoured."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.moto_s3 import moto_server, point_aws_at
from tests.raw_http import RawServer, request_of
from wrapper.entities.remote import open_remote
from wrapper.entities.store import StoreError
from wrapper.errors import SourceError
from wrapper.sources import materialise_source
from wrapper.sources.settings import SourceSettings

DEADLINE = 2.0
MAX_RSS_KIB = 100 * 1024
KEY_ID, SECRET = "AKIDRAWSERVER", "raw-server-secret-not-shown"
HANDLER = b"def handler(context, event):\n    return 'via s3'\n"

Behaviour = Callable[[socket.socket, str, str], None]
"""Answers one request on `conn`, given its method and target."""


def metadata(method: str, target: str) -> Optional[bytes]:
    """A sensible answer to a HEAD or a listing (one 100-byte object under the prefix asked),
    so that the GET of the object is reached; None for any other request."""
    if method == "HEAD":
        return b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "e1"\r\nConnection: close\r\n\r\n'
    query = parse_qs(urlsplit(target).query)
    if method != "GET" or "list-type" not in query:
        return None
    key = query.get("prefix", [""])[0] + "data.py"
    listing = (
        "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>1</KeyCount>"
        f'<Contents><Key>{key}</Key><ETag>"e1"</ETag><Size>100</Size>'
        "<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>"
    ).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(listing)}\r\nConnection: close\r\n\r\n"
    return head.encode() + listing


def drip_headers(conn: socket.socket, method: str, target: str) -> None:
    """Any answer's headers (HEAD, listing or GET) one byte every 0.3 s, never finished."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 1000:
        conn.sendall(bytes([byte]))
        time.sleep(0.3)


def stall_mid_body(conn: socket.socket, method: str, target: str) -> None:
    """The GET declares 100000 bytes, sends 1000, then waits."""
    conn.sendall(
        metadata(method, target)
        or b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"#" * 1000
    )
    time.sleep(30)


def endless_body(conn: socket.socket, method: str, target: str) -> None:
    """The GET of an object HEAD and listing say is 100 bytes never ends (no Content-Length)."""
    answer = metadata(method, target)
    if answer is not None:
        conn.sendall(answer)
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    chunk = b"#" * 65536
    while True:
        conn.sendall(chunk)


def well_behaved(conn: socket.socket, method: str, target: str) -> None:
    """A handler file of its declared size."""
    body = b"" if method == "HEAD" else HANDLER
    head = f'HTTP/1.1 200 OK\r\nContent-Length: {len(HANDLER)}\r\nETag: "e2"\r\n'
    conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)


def s3_server(behaviour: Behaviour, tls: Optional[ssl.SSLContext] = None) -> RawServer:
    """A raw server on 127.0.0.1 playing `behaviour` for one request a connection."""
    return RawServer(lambda conn: behaviour(conn, *request_of(conn)), tls)


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Behaviour, tls: Optional[ssl.SSLContext] = None) -> RawServer:
        servers.append(s3_server(behaviour, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def aws_environ(endpoint: str, tmp_path: Path) -> dict[str, str]:
    """This process's environment with AWS pointing only at `endpoint` (dummy keys), no
    proxy, and the FN_WRAPPER_* download limits of entity reads."""
    environ = {name: value for name, value in os.environ.items() if not _ours(name)}
    return {
        **environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "FN_WRAPPER_DOWNLOAD_TIMEOUT": str(DEADLINE),
        "FN_WRAPPER_READ_TIMEOUT": "5",
        "FN_WRAPPER_MAX_DOWNLOAD_SIZE": "16MiB",
    }


def point_aws_at_raw(server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`aws_environ` for this process."""
    for name in [name for name in os.environ if _ours(name)]:
        monkeypatch.delenv(name)
    for name, value in aws_environ(server.url(""), tmp_path).items():
        monkeypatch.setenv(name, value)


def _ours(name: str) -> bool:
    """Whether `name` is a variable the tests set (AWS, download limits) or a proxy's."""
    return name.startswith(("AWS_", "FN_WRAPPER_")) or "proxy" in name.lower()


# --- a total deadline over every read, also over the headers; memory stays flat ---------------

CHILD = """
import json, sys, time
def peak():  # own peak RSS, KiB (ru_maxrss counts the forked parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from pathlib import Path
url, how, tmp = sys.argv[1:4]
if how == "source":
    from types import SimpleNamespace
    from wrapper.sources import materialise_source
    from wrapper.sources.settings import FetchLimits, SourceSettings
    limits = FetchLimits(total_timeout=2, read_timeout=5, max_download_bytes=64 * 1024 * 1024)
    settings = SourceSettings(cache_dir=Path(tmp, "cache"), limits=limits)
    source = SimpleNamespace(code_src=url, code=None, base64=None)
    def read():
        materialise_source(source, settings)
elif how == "store":  # content the S3 store keeps
    from wrapper.entities.record import EntityRecord
    from wrapper.entities.s3store import S3Store
    store = S3Store("s3://bucket")
    record = EntityRecord(
        "demo", "dataitem", "table", "data", id="0" * 32, sha256="0" * 64, spec={"path": url}
    )
    def read():
        with store.open(record) as stream:
            while stream.read(65536):
                pass
else:  # a dataitem registered at an s3:// object or prefix
    from wrapper.entities.project import Project, Run
    from wrapper.entities.store import open_store
    project = Project("demo", open_store(tmp + "/store"), Run("demo"))
    item = project.log_dataitem("remote", path=url)
    def read():
        item.download(tmp + "/out", overwrite=True)
import boto3  # loaded before the clock starts
started = time.monotonic()
try:
    read()
    error = None
except Exception as exc:
    error = getattr(exc, "message", None) or str(exc)
seconds = time.monotonic() - started
print(json.dumps({"error": error, "seconds": seconds, "peak_kib": peak()}))
"""

STORED = "s3://bucket/entities/demo/dataitem/data/" + "0" * 32 + "/content/data.csv"
READS = {  # how: (the URL read, the start of its error message)
    "source-object": ("s3://bucket/code/func.py", "code_src 's3://bucket/code/func.py': "),
    "source-prefix": ("s3://bucket/code/", "code_src 's3://bucket/code/': "),
    "store": (STORED, f"S3 store: cannot read {STORED}: "),
    "dataitem-object": ("s3://bucket/data/data.csv", "cannot read s3://bucket/data/data.csv: "),
    "dataitem-prefix": ("s3://bucket/data/", "cannot read s3://bucket/data/: "),
}
TOO_BIG = {"source": "download larger than max_download_bytes=67108864"}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize(
    "behaviour", [drip_headers, stall_mid_body, endless_body], ids=lambda b: b.__name__
)
def test_a_misbehaving_server_is_cut_off_within_the_deadline(
    serve: Callable[..., RawServer], tmp_path: Path, read: str, behaviour: Behaviour
) -> None:
    server = serve(behaviour)
    url, start = READS[read]
    how = read.split("-")[0]
    out = tmp_path / "child.json"
    with out.open("w") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, how, str(tmp_path)],
            stdout=stdout,
            env=aws_environ(server.url(""), tmp_path),
        )
        assert child.wait(timeout=60) == 0
    outcome = json.loads(out.read_text())
    too_big = TOO_BIG.get(how, "larger than max_download_bytes=16777216")
    reasons = ["download took longer than 2 s"]
    if behaviour is endless_body:
        reasons.append(too_big)
    error, peak = outcome["error"], outcome["peak_kib"]
    print(f"{read} {behaviour.__name__}: {outcome['seconds']:.2f} s, peak {peak} KiB: {error}")
    assert error is not None and error.startswith(start), outcome
    assert error[len(start) :].split(" (FN_WRAPPER_")[0] in reasons, outcome
    assert SECRET not in error and KEY_ID not in error
    assert outcome["seconds"] < DEADLINE + 1, outcome
    assert peak < MAX_RSS_KIB, f"peak RSS {peak} KiB"


def test_no_request_is_retried_once_the_deadline_has_passed(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries a cut-off request (here up to 3 attempts, after a random pause of up
    to 1 s, then 2 s): the transfer's clock keeps running and no attempt follows it."""
    server = serve(drip_headers)
    point_aws_at_raw(server, tmp_path, monkeypatch)
    monkeypatch.setenv("FN_WRAPPER_DOWNLOAD_TIMEOUT", "1")
    expected = r"^cannot read s3://bucket/data\.csv: download took longer than 1 s$"
    with pytest.raises(StoreError, match=expected):
        open_remote("s3://bucket/data.csv")
    time.sleep(0.2)  # an attempt after the first would have connected by now
    assert server.connections == 1


# --- the proxy and trust settings boto3 reads are honoured -----------------------------------


class _CountingProxy(http.server.ThreadingHTTPServer):
    """A forward http proxy on 127.0.0.1 that counts the requests it forwards."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.forwarded = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingProxy

    def _forward(self) -> None:
        self.server.forwarded += 1
        target = urlsplit(self.path)  # a proxy is asked for an absolute URL
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream.request(self.command, path, body, dict(self.headers))
        answer = upstream.getresponse()
        content = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _source(url: str, tmp_path: Path) -> Path:
    source = SimpleNamespace(code_src=url, code=None, base64=None)
    return materialise_source(source, SourceSettings(cache_dir=tmp_path / "cache")).root


def test_http_proxy_and_no_proxy_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _CountingProxy()
    with contextlib.closing(proxy), moto_server() as (url, client):
        client.create_bucket(Bucket="code")
        client.put_object(Bucket="code", Key="func.py", Body=HANDLER)
        point_aws_at(url, monkeypatch, tmp_path)
        for name in ("HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)

        assert (_source("s3://code/func.py", tmp_path / "a") / "func.py").read_bytes() == HANDLER
        assert proxy.forwarded >= 2  # HEAD and GET
        seen = proxy.forwarded
        with open_remote("s3://code/func.py") as stream:
            assert stream.read() == HANDLER
        assert proxy.forwarded > seen

        seen = proxy.forwarded
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert (_source("s3://code/func.py", tmp_path / "b") / "func.py").read_bytes() == HANDLER
        with open_remote("s3://code/func.py") as stream:
            assert stream.read() == HANDLER
        assert proxy.forwarded == seen


def test_aws_ca_bundle_is_honoured(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trustme

    ca, stranger = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    stranger.cert_pem.write_to_path(str(tmp_path / "stranger.pem"))
    server = serve(well_behaved, tls=context)
    point_aws_at_raw(server, tmp_path, monkeypatch)
    # about trust, not time: botocore retries a failed handshake with back-off, which a busy
    # machine can stretch past the other tests' 2 s deadline (seen once on Python 3.9)
    monkeypatch.setenv("FN_WRAPPER_DOWNLOAD_TIMEOUT", "30")

    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert (_source("s3://code/func.py", tmp_path / "a") / "func.py").read_bytes() == HANDLER
    with open_remote("s3://code/func.py") as stream:
        assert stream.read() == HANDLER

    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "stranger.pem"))
    untrusted = re.escape(
        "TLS certificate not trusted (unable to get local issuer certificate; see AWS_CA_BUNDLE)"
    )
    with pytest.raises(SourceError, match=f"^code_src 's3://code/func.py': {untrusted}$"):
        _source("s3://code/func.py", tmp_path / "b")
    with pytest.raises(StoreError, match=f"^cannot read s3://code/func.py: {untrusted}$"):
        open_remote("s3://code/func.py")

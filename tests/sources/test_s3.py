"""S3 sources (DESIGN §3) against moto's S3 server on 127.0.0.1: objects, archives, prefixes,
pins, ETag revalidation, limits, clear errors, and one download for concurrent workers."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import socket
import sys
import tarfile
import threading
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import pytest

from tests.moto_s3 import SECRET, moto_server, point_aws_at
from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.loader import load_code
from wrapper.sources import SourceTree, materialise_source
from wrapper.sources.archive import ArchiveLimits
from wrapper.sources.settings import FetchLimits, SourceSettings

HANDLER = b"def handler(context, event):\n    return 's3'\n"
_REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP')


class _RequestLog(logging.Handler):
    """Collects `METHOD /path` of every request the server's (werkzeug's) log reports."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _REQUEST.search(record.getMessage())
        if match:
            self.lines.append(f"{match.group(1)} {match.group(2)}")


@dataclass
class Server:
    url: str
    log: _RequestLog
    client: Any  # the tests' own boto3 client, to make buckets and objects


@dataclass
class Bucket:
    """A fresh bucket on the server, and the requests the server saw since it was made."""

    server: Server
    name: str = field(default_factory=lambda: f"code-{uuid.uuid4().hex[:12]}")

    @property
    def client(self) -> Any:
        return self.server.client

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def uri(self, key: str, scheme: str = "s3") -> str:
        return f"{scheme}://{self.name}/{key}"

    def requests(self, method: str, key: str) -> int:
        """How many `method` requests named exactly this object (no query string)."""
        return self.server.log.lines.count(f"{method} /{self.name}/{key}")

    def seen(self) -> int:
        """How many requests of any kind named this bucket so far."""
        return sum(line.split(" ")[1].startswith(f"/{self.name}") for line in self.server.log.lines)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[Server]:
    """moto's S3 server in a thread, its request log captured from werkzeug's logger."""
    log, werkzeug = _RequestLog(), logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    level = werkzeug.level
    werkzeug.setLevel(logging.INFO)
    with moto_server() as (url, client):
        yield Server(url, log, client)
    werkzeug.removeHandler(log)
    werkzeug.setLevel(level)


@pytest.fixture
def bucket(s3_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    """AWS variables pointing at the server (and nothing from the user's AWS config)."""
    point_aws_at(s3_server.url, monkeypatch, tmp_path)
    made = Bucket(s3_server)
    made.client.create_bucket(Bucket=made.name)
    return made


def fetch(code_src: str, settings: Optional[SourceSettings] = None) -> SourceTree:
    return materialise_source(SimpleNamespace(code_src=code_src, code=None, base64=None), settings)


def refused(code_src: str, settings: Optional[SourceSettings] = None) -> str:
    with pytest.raises(SourceError) as caught:
        fetch(code_src, settings)
    message = caught.value.message
    assert code_src.split("#")[0] in message and SECRET not in message
    assert "Traceback" not in message and caught.value.__cause__ is None
    return message


def zip_bytes(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return out.getvalue()


def tar_gz_bytes(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


def files_under(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# --- objects and archives -------------------------------------------------------------------


def test_py_object_is_a_one_file_source(bucket: Bucket, caplog: pytest.LogCaptureFixture) -> None:
    bucket.put("funcs/handler.py", HANDLER)
    with caplog.at_level(logging.INFO, "wrapper.sources"):
        tree = fetch(bucket.uri("funcs/handler.py"))
    assert tree.single_file == "handler.py"
    assert (tree.root / "handler.py").read_bytes() == HANDLER
    assert [r.getMessage() for r in caplog.records if r.name == "wrapper.sources"] == [
        f"code_src {bucket.uri('funcs/handler.py')}: fetched {len(HANDLER)} bytes into {tree.root}"
    ]


@pytest.mark.parametrize(("key", "pack"), [("code.zip", zip_bytes), ("code.tar.gz", tar_gz_bytes)])
def test_archive_object_is_unpacked(bucket: Bucket, key: str, pack: Any) -> None:
    bucket.put(key, pack({"main.py": HANDLER.decode(), "lib/util.py": "X = 1\n"}))
    tree = fetch(bucket.uri(key))
    assert files_under(tree.root) == {"main.py": HANDLER.decode(), "lib/util.py": "X = 1\n"}


def test_zip_scheme_forces_an_archive(bucket: Bucket) -> None:
    bucket.put("bundle", zip_bytes({"main.py": "A = 1\n"}))
    bucket.put("plain.py", HANDLER)
    assert files_under(fetch(bucket.uri("bundle", "zip+s3")).root) == {"main.py": "A = 1\n"}
    assert "the content is not an archive" in refused(bucket.uri("plain.py", "zip+s3"))
    assert "the content is a zip archive" in refused(bucket.uri("bundle", "tar+s3"))


# --- prefixes -------------------------------------------------------------------------------

PACKAGE = {
    "app/s3shop/__init__.py": "",
    "app/s3shop/prices.py": "def price(n):\n    return n * 2\n",
    "app/s3shop/api.py": (
        "from .prices import price\n\ndef handler(context, event):\n    return price(event)\n"
    ),
    "app/data/rates.txt": "1.5\n",
}


@pytest.mark.usefixtures("restore_imports")
def test_prefix_becomes_a_folder_that_loads_end_to_end(bucket: Bucket) -> None:
    for key, text in PACKAGE.items():
        bucket.put(key, text.encode())
    bucket.put("app/s3shop/", b"")  # a folder marker, as consoles create them
    bucket.put("apparent.py", b"outside the prefix\n")
    tree = fetch(bucket.uri("app/"))
    assert tree.single_file is None
    assert files_under(tree.root) == {k.removeprefix("app/"): v for k, v in PACKAGE.items()}
    assert load_code(tree, "s3shop.api:handler").handler(None, 21) == 42


@pytest.mark.parametrize(
    ("key", "reason"),
    [("p/../escaped.py", "escapes the target directory"), ("p//abs/escaped.py", "absolute path")],
)
def test_prefix_key_escaping_the_folder_is_refused(
    bucket: Bucket, key: str, reason: str, _isolated_cache: Path
) -> None:
    bucket.put("p/main.py", HANDLER)
    bucket.put(key, b"evil = True\n")
    with pytest.raises(UnsafeArchiveError, match=reason) as caught:
        fetch(bucket.uri("p/"))
    assert caught.value.message.startswith(f"code_src '{bucket.uri('p/')}': ")
    assert not list(_isolated_cache.rglob("escaped.py"))
    assert not Path("/abs/escaped.py").exists()


def test_prefix_refuses_pins_and_archive_schemes(bucket: Bucket) -> None:
    bucket.put("p/main.py", HANDLER)
    seen = bucket.seen()
    pinned = bucket.uri("p/") + "#sha256=" + "0" * 64
    assert "a prefix (ending in /) cannot be pinned by sha256" in refused(pinned)
    assert "cannot be read as a zip archive" in refused(bucket.uri("p/", "zip+s3"))
    assert bucket.seen() == seen


def test_whole_bucket_is_a_prefix(bucket: Bucket) -> None:
    bucket.put("main.py", HANDLER)
    assert files_under(fetch(f"s3://{bucket.name}").root) == {"main.py": HANDLER.decode()}


# --- pins and revalidation ------------------------------------------------------------------


def test_sha256_pin_right_and_wrong(bucket: Bucket) -> None:
    bucket.put("handler.py", HANDLER)
    digest = hashlib.sha256(HANDLER).hexdigest()
    tree = fetch(bucket.uri("handler.py") + f"#sha256={digest}")
    assert (tree.root / "handler.py").read_bytes() == HANDLER
    wrong = "f" * 64
    message = refused(bucket.uri("handler.py") + f"#sha256={wrong}")
    assert f"content sha256 is {digest}, the pin says {wrong}" in message


def test_pinned_tree_is_reused_without_the_network(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = zip_bytes({"main.py": "A = 1\n"})
    bucket.put("code.zip", archive)
    uri = bucket.uri("code.zip") + f"#sha256={hashlib.sha256(archive).hexdigest()}"
    first = fetch(uri)
    bucket.client.delete_object(Bucket=bucket.name, Key="code.zip")
    seen = bucket.seen()
    assert fetch(uri) == first
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    assert fetch(uri) == first
    assert bucket.seen() == seen


def test_unchanged_object_is_reused_by_etag_and_a_change_is_fetched(
    bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put("handler.py", HANDLER)
    first = fetch(bucket.uri("handler.py"))
    with caplog.at_level(logging.INFO, "wrapper.sources"):
        assert fetch(bucket.uri("handler.py")) == first
    assert [r.getMessage() for r in caplog.records if r.name == "wrapper.sources"] == [
        f"code_src {bucket.uri('handler.py')}: unchanged (ETag), reusing {first.root}"
    ]
    assert bucket.requests("HEAD", "handler.py") == 2
    assert bucket.requests("GET", "handler.py") == 1
    bucket.put("handler.py", b"def handler(context, event):\n    return 'v2'\n")
    second = fetch(bucket.uri("handler.py"))
    assert second.root != first.root
    assert "v2" in (second.root / "handler.py").read_text()
    assert bucket.requests("GET", "handler.py") == 2


def test_unchanged_prefix_is_reused_and_a_change_is_fetched(
    bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put("p/main.py", HANDLER)
    bucket.put("p/lib.py", b"X = 1\n")
    first = fetch(bucket.uri("p/"))
    with caplog.at_level(logging.INFO, "wrapper.sources"):
        assert fetch(bucket.uri("p/")) == first
    assert f"unchanged (ETags), reusing {first.root}" in caplog.text
    assert bucket.requests("GET", "p/main.py") == 1
    bucket.put("p/lib.py", b"X = 2\n")
    second = fetch(bucket.uri("p/"))
    assert second.root != first.root
    assert (second.root / "lib.py").read_text() == "X = 2\n"
    assert bucket.requests("GET", "p/lib.py") == 2


def test_concurrent_workers_download_once(bucket: Bucket) -> None:
    bucket.put("handler.py", HANDLER)
    trees: list[SourceTree] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            trees.append(fetch(bucket.uri("handler.py")))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(trees) == 4 and len({t.root for t in trees}) == 1
    assert bucket.requests("GET", "handler.py") == 1


# --- limits ---------------------------------------------------------------------------------


def test_object_over_max_download_bytes_is_refused_before_download(bucket: Bucket) -> None:
    bucket.put("big.py", b"#" * 2000)
    settings = SourceSettings(limits=FetchLimits(max_download_bytes=1000))
    assert "the object is 2000 bytes, over max_download_bytes=1000" in refused(
        bucket.uri("big.py"), settings
    )
    assert bucket.requests("GET", "big.py") == 0


def test_prefix_over_max_download_bytes_is_refused_before_download(bucket: Bucket) -> None:
    for name in ("a.py", "b.py", "c.py"):
        bucket.put(f"p/{name}", b"#" * 400)
    settings = SourceSettings(limits=FetchLimits(max_download_bytes=1000))
    message = refused(bucket.uri("p/"), settings)
    assert "the objects under the prefix total 1200 bytes, over max_download_bytes=1000" in message
    assert bucket.requests("GET", "p/a.py") == 0


def test_total_timeout_bounds_the_download(bucket: Bucket) -> None:
    bucket.put("handler.py", HANDLER)
    settings = SourceSettings(limits=FetchLimits(total_timeout=0.0))
    assert "download took longer than 0 s" in refused(bucket.uri("handler.py"), settings)


def test_prefix_over_max_members_is_refused(bucket: Bucket) -> None:
    for name in ("a.py", "b.py", "c.py"):
        bucket.put(f"p/{name}", b"A = 1\n")
    settings = SourceSettings(archive_limits=ArchiveLimits(max_members=2))
    assert "more than max_members=2 objects" in refused(bucket.uri("p/"), settings)
    assert bucket.requests("GET", "p/a.py") == 0


# --- errors ---------------------------------------------------------------------------------


def test_missing_bucket_key_and_empty_prefix(bucket: Bucket) -> None:
    bucket.put("folder/main.py", HANDLER)
    assert refused(f"s3://no-such-{bucket.name}/main.py").endswith(": no such bucket")
    assert refused(f"s3://no-such-{bucket.name}/p/").endswith(": no such bucket")
    assert refused(bucket.uri("nothing.py")).endswith(": no such key")
    assert refused(bucket.uri("folder")).endswith("no such key (a folder: end the URI with /)")
    assert refused(bucket.uri("empty/")).endswith(": no objects under this prefix")


def test_unknown_credentials_are_refused_without_showing_them(
    bucket: Bucket, s3_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put("handler.py", HANDLER)
    bucket.put("p/main.py", HANDLER)
    _moto_auth(s3_server, "0")  # from now on moto checks keys against its IAM users
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        assert "access denied (check the AWS credentials" in refused(bucket.uri("handler.py"))
        assert "does not know this AWS access key id" in refused(bucket.uri("p/"))
    finally:
        _moto_auth(s3_server, "inf")


def _moto_auth(server: Server, initial_no_auth_count: str) -> None:
    request = urllib.request.Request(
        f"{server.url}/moto-api/reset-auth",
        data=initial_no_auth_count.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_unreachable_endpoint(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url()
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    message = refused(bucket.uri("handler.py"))
    assert f'Could not connect to the endpoint URL: "{url}/' in message


def test_service_endpoint_variable_wins(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket.put("handler.py", HANDLER)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", bucket.server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    assert fetch(bucket.uri("handler.py")).single_file == "handler.py"


def test_credentials_in_the_uri_are_refused(bucket: Bucket) -> None:
    with pytest.raises(SourceError, match="come from the AWS variables") as caught:
        fetch(f"s3://key:{SECRET}@{bucket.name}/handler.py")
    assert SECRET not in caught.value.message


def test_missing_boto3_says_what_to_install(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` sees when absent
    assert "pip install 'fn-wrapper[s3]'" in refused(bucket.uri("handler.py"))

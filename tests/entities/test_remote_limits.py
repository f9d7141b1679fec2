"""Remote (http) entity content is read within a total deadline and a size cap, against a
real misbehaving server on 127.0.0.1; each read runs in a child whose peak RSS is measured."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.raw_http import (
    Behaviour,
    RawServer,
    drip_headers,
    endless_body,
    redirect_to,
    stall_mid_body,
)

DEADLINE = 2.0
MAX_RSS_KIB = 100 * 1024


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Behaviour) -> RawServer:
        servers.append(RawServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


CHILD = """
import json, sys, time
def peak():  # own peak RSS, KiB (ru_maxrss counts the forked parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from wrapper.entities.project import Project, Run
from wrapper.entities.store import open_store
url, how, tmp = sys.argv[1:4]
if how == "as_df":
    import pandas  # loaded before the clock starts (pandas alone takes ~90 MB)
baseline = peak()
project = Project("demo", open_store(tmp + "/store"), Run("demo"))
item = project.log_dataitem("remote", path=url)
started = time.monotonic()
try:
    if how == "as_df":
        item.as_df()
    elif how == "download":
        item.download(tmp + "/out", overwrite=True)
    else:
        with item.open() as stream:
            while stream.read(65536):
                pass
    error = None
except Exception as exc:
    error = getattr(exc, "message", None) or str(exc)
seconds = time.monotonic() - started
outcome = {"error": error, "seconds": seconds, "baseline_kib": baseline, "peak_kib": peak()}
print(json.dumps(outcome))
"""


def read_in_child(url: str, how: str, tmp_path: Path, **env: str) -> tuple[dict, int]:
    """Run one read in a child process: its outcome and its peak RSS in KiB."""
    environ = {
        **os.environ,
        "FN_WRAPPER_DOWNLOAD_TIMEOUT": str(DEADLINE),
        "FN_WRAPPER_READ_TIMEOUT": "5",
        "FN_WRAPPER_MAX_DOWNLOAD_SIZE": "16MiB",
        **env,
    }
    out = tmp_path / f"child-{how}.json"
    with out.open("w") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, how, str(tmp_path)], stdout=stdout, env=environ
        )
        assert child.wait(timeout=60) == 0
    outcome = json.loads(out.read_text())
    return outcome, outcome["peak_kib"]


@pytest.mark.parametrize("how", ["as_df", "download", "open"])
@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (drip_headers, "download took longer than 2 s"),
        (stall_mid_body, "download took longer than 2 s"),
        (endless_body, r"(download took longer than 2 s|larger than max_download_bytes=16777216)"),
    ],
    ids=["drip-headers", "stall-mid-body", "endless-body"],
)
def test_a_misbehaving_server_is_cut_off_within_the_deadline(
    serve: Callable[[Behaviour], RawServer],
    tmp_path: Path,
    how: str,
    behaviour: Behaviour,
    expected: str,
) -> None:
    import re

    server = serve(behaviour)
    outcome, peak_kib = read_in_child(server.url("/data.csv?token=s3cr3t"), how, tmp_path)
    assert outcome["error"] is not None, outcome
    assert re.search(expected, outcome["error"]), outcome["error"]
    assert f"http://127.0.0.1:{server.port}/data.csv" in outcome["error"]
    assert "s3cr3t" not in outcome["error"]
    assert outcome["seconds"] < DEADLINE + 1, outcome
    # the read's own memory: the peak above what the process held before it started
    grown = peak_kib - outcome["baseline_kib"]
    print(f"{how} {behaviour.__name__}: {outcome['seconds']:.2f} s, peak {peak_kib} KiB")
    assert grown < MAX_RSS_KIB, f"peak RSS {peak_kib} KiB, {grown} KiB above the start"
    if how != "as_df":  # pandas alone takes ~90 MB
        assert peak_kib < MAX_RSS_KIB, f"peak RSS {peak_kib} KiB"


def test_a_redirect_to_ftp_is_refused(serve: Callable[[Behaviour], RawServer]) -> None:
    from wrapper.entities.remote import open_remote
    from wrapper.entities.store import StoreError

    server = serve(redirect_to("ftp://127.0.0.1/data.csv"))
    with pytest.raises(StoreError, match="redirect to a ftp: URL refused"):
        open_remote(server.url("/data.csv"))


def test_a_redirect_from_https_to_http_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trustme

    from wrapper.entities.remote import open_remote
    from wrapper.entities.store import StoreError

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    server = RawServer(redirect_to("http://127.0.0.1:1/data.csv"), tls=context)
    try:
        with pytest.raises(StoreError, match="redirect from https to http refused"):
            open_remote(server.url("/data.csv"))
    finally:
        server.close()


def test_too_many_redirects_and_the_environment_twins(
    serve: Callable[[Behaviour], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wrapper.entities.remote import open_remote
    from wrapper.entities.store import StoreError

    server = serve(redirect_to("/again"))
    monkeypatch.setenv("FN_WRAPPER_MAX_REDIRECTS", "2")
    with pytest.raises(StoreError, match="more than max_redirects=2 redirects"):
        open_remote(server.url("/data.csv"))
    monkeypatch.setenv("FN_WRAPPER_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(StoreError, match="FN_WRAPPER_DOWNLOAD_TIMEOUT"):
        open_remote(server.url("/data.csv"))


def test_credentials_in_a_url_are_masked() -> None:
    from wrapper.entities.remote import shown

    assert shown("https://user:pass@host:8443/x.csv?t=1") == "https://***@host:8443/x.csv"

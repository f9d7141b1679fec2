"""moto's S3 server on 127.0.0.1 for the tests, and AWS variables pointing only at it."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

SECRET = "moto-secret-key-not-shown"
"""The secret access key the tests use (no message may show it)."""


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, Any]]:
    """The server's URL and a client of the tests' own, while the server runs in a thread."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        _wait_until_answers(url)
        client = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key=SECRET, region_name="us-east-1"
        ).client("s3", endpoint_url=url)
        yield url, client
    finally:
        server.stop()


def point_aws_at(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AWS variables for the server, and nothing from the user's own AWS configuration."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if _moto_version() < (5, 2):
        # moto 5.1 (the last for Python 3.9) answers a whole-object CRC for multipart uploads
        # that botocore's default response validation rejects: there, validate only what a
        # request asks for. A gap of the emulator; real S3 and moto 5.2 pass either way.
        monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")


def _moto_version() -> tuple[int, ...]:
    return tuple(int(part) for part in version("moto").split(".")[:2] if part.isdigit())


def _wait_until_answers(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

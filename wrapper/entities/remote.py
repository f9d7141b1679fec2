"""Content a dataitem points at outside the store: an http(s) URL or an s3:// object, opened
as a stream (never read whole). No credential is added to an http(s) request; S3 keys go
to the endpoint the AWS configuration names (boto3, imported only for s3://)."""

from __future__ import annotations

from typing import BinaryIO, cast
from urllib.parse import urlsplit

from wrapper.entities.store import StoreError

READ_TIMEOUT = 60.0
"""Seconds a remote read may wait for data (and to connect)."""


def shown(url: str) -> str:
    """A URL fit for messages: no user info, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def open_remote(url: str) -> BinaryIO:
    """A stream over the content at `url` (http, https or s3)."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return _open_http(url)
    if scheme == "s3":
        return _open_s3(url)
    raise StoreError(f"cannot read {shown(url)!r}: expected an http(s):// or s3:// path")


def _open_http(url: str) -> BinaryIO:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "fn-wrapper"})
    try:
        return cast(BinaryIO, urllib.request.urlopen(request, timeout=READ_TIMEOUT))
    except urllib.error.HTTPError as exc:
        exc.close()
        raise StoreError(f"cannot read {shown(url)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StoreError(f"cannot read {shown(url)}: {reason}") from None


def _open_s3(url: str) -> BinaryIO:
    parts = urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise StoreError(f"cannot read {url!r}: expected s3://bucket/key")
    from wrapper.entities.s3store import s3_client
    from wrapper.sources.s3 import s3_error_code

    client = s3_client("a dataitem at an s3:// path")  # boto3 is there from here on
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return cast(BinaryIO, client.get_object(Bucket=bucket, Key=key)["Body"])
    except ClientError as exc:
        raise StoreError(f"cannot read {url}: {s3_error_code(exc) or 'error'}") from None
    except BotoCoreError as exc:
        raise StoreError(f"cannot read {url}: {exc}") from None

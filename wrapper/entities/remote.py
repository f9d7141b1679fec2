"""Content an entity points at outside the store: an http(s) URL, an s3:// object or a file
on this machine (registered in place by `project.new_*`), opened as a stream (never read
whole). No credential is added to an http(s) request; S3 keys go to the endpoint the AWS
configuration names (boto3, imported only for s3://)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Optional, cast
from urllib.parse import unquote, urlsplit

from wrapper.entities.store import StoreError

READ_TIMEOUT = 60.0
"""Seconds a remote read may wait for data (and to connect)."""


def shown(url: str) -> str:
    """A URL fit for messages: no user info, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def local_path(path: str) -> Optional[Path]:
    """The file or folder on this machine that `path` names (a plain path or file://), or
    None for a URL."""
    parts = urlsplit(path)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (C: on Windows)
        return Path(path).expanduser()
    return None


def open_remote(url: str) -> BinaryIO:
    """A stream over the content at `url` (http, https, s3, or a local file)."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return _open_http(url)
    if scheme == "s3":
        return _open_s3(url)
    local = local_path(url)
    if local is None:
        raise StoreError(f"cannot read {shown(url)!r}: expected an http(s):// or s3:// path")
    try:
        return local.open("rb")
    except OSError as exc:
        raise StoreError(f"cannot read {local}: {exc.strerror or exc}") from None


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


def is_s3_folder(path: str) -> bool:
    """An s3:// prefix (ending in /): a folder of objects, as DigitalHub's partitions."""
    return path.startswith("s3://") and path.endswith("/")


def copy_s3_folder(url: str, tree: Path) -> None:
    """The objects under the prefix `url` into the new folder `tree`, by their names below
    it; a name that would leave the folder is refused."""
    from wrapper.entities.transfer import write_file

    bucket, prefix = _bucket_key(url)
    with _s3_errors(url) as client:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    tree.mkdir()
    for key in keys:
        relative = PurePosixPath(key[len(prefix) :])
        if key.endswith("/"):
            continue  # a folder marker, no content
        if relative.is_absolute() or ".." in relative.parts:
            raise StoreError(f"{url}: the object {key!r} would leave the folder")
        target = tree.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _s3_errors(url) as client:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with contextlib.closing(body):
            write_file(target, body, f"download s3://{bucket}/{key}")


def _open_s3(url: str) -> BinaryIO:
    bucket, key = _bucket_key(url)
    with _s3_errors(url) as client:
        return cast(BinaryIO, client.get_object(Bucket=bucket, Key=key)["Body"])


def _bucket_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise StoreError(f"cannot read {url!r}: expected s3://bucket/key")
    return bucket, key


@contextlib.contextmanager
def _s3_errors(url: str) -> Iterator[Any]:
    """An S3 client (boto3 is imported only here); its failures one StoreError naming `url`."""
    from wrapper.entities.s3store import s3_client
    from wrapper.sources.s3 import s3_error_code

    client = s3_client("a dataitem at an s3:// path")  # boto3 is there from here on
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield client
    except ClientError as exc:
        raise StoreError(f"cannot read {url}: {s3_error_code(exc) or 'error'}") from None
    except BotoCoreError as exc:
        raise StoreError(f"cannot read {url}: {exc}") from None

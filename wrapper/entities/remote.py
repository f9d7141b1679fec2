"""Content an entity points at outside the store: an http(s) URL, an s3:// object or a file
on this machine (registered in place by `project.new_*`), opened as a stream (never read
whole). No credential is added to an http(s) request; S3 keys go to the endpoint the AWS
configuration names (boto3, imported only for s3://). An http(s) or s3:// read is bounded as
code downloads are (`FetchLimits`, from the `FN_WRAPPER_*` twins of the download flags): time
to connect, each read, the whole transfer (headers and body), size, redirects; an s3:// folder
is one transfer."""

from __future__ import annotations

import io
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, cast
from urllib.parse import unquote, urlsplit

from wrapper.entities.store import StoreError

if TYPE_CHECKING:
    import http.client

    from wrapper.sources.http import Deadline
    from wrapper.sources.settings import FetchLimits


def shown(url: str) -> str:
    """A URL fit for messages: user info masked as `***@`, no query or fragment (they may
    hold secrets)."""
    parts = urlsplit(url)
    masked = "***@" if "@" in parts.netloc else ""
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # "user:pass@host" read as a bad port
        port = ""
    return f"{parts.scheme}://{masked}{host}{port}{parts.path}"


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
    import http.client
    import urllib.error
    import urllib.request

    from wrapper.sources.http import Deadline, failure_reason, open_bounded
    from wrapper.sources.settings import FetchLimits

    try:
        limits = FetchLimits.from_environ(os.environ)
    except ValueError as exc:
        raise StoreError(f"cannot read {shown(url)}: {exc}") from None
    request = urllib.request.Request(url, headers={"User-Agent": "fn-wrapper"})
    deadline = Deadline(limits.total_timeout)
    try:
        response = open_bounded(request, limits, deadline)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limits.max_download_bytes:
            response.close()
            raise StoreError(
                f"cannot read {shown(url)}: its {declared} bytes exceed "
                f"max_download_bytes={limits.max_download_bytes} (FN_WRAPPER_MAX_DOWNLOAD_SIZE)"
            )
    except (OSError, http.client.HTTPException) as exc:
        deadline.cancel()
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        reason = failure_reason(exc, limits, deadline)
        raise StoreError(f"cannot read {shown(url)}: {reason}") from None
    except BaseException:
        deadline.cancel()
        raise
    stream = _HTTPStream(_BoundedResponse(response, url, limits, deadline), 64 * 1024)
    stream.headers = response.headers  # the content type tells a dataframe's format
    return cast(BinaryIO, stream)


class _HTTPStream(io.BufferedReader):
    headers: Any = None


class _BoundedResponse(io.RawIOBase):
    """An http(s) body read within its limits: a failure, the deadline or too many bytes is
    a StoreError naming the URL."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        url: str,
        limits: FetchLimits,
        deadline: Deadline,
    ) -> None:
        super().__init__()
        self._response = response
        self._url = url
        self._limits = limits
        self._deadline = deadline
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import http.client

        from wrapper.sources.http import failure_reason

        try:
            count = self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            reason = failure_reason(exc, self._limits, self._deadline)
            raise StoreError(f"cannot read {shown(self._url)}: {reason}") from None
        if self._deadline.expired:  # the watchdog cut the body short
            raise StoreError(f"cannot read {shown(self._url)}: {self._deadline.reason()}")
        self._total += count
        if self._total > self._limits.max_download_bytes:
            raise StoreError(
                f"cannot read {shown(self._url)}: larger than max_download_bytes="
                f"{self._limits.max_download_bytes} (FN_WRAPPER_MAX_DOWNLOAD_SIZE)"
            )
        if count == 0:
            self._deadline.cancel()  # read to the end: nothing left to bound
        return count

    def close(self) -> None:
        self._deadline.cancel()
        self._response.close()
        super().close()


def is_s3_folder(path: str) -> bool:
    """An s3:// prefix (ending in /): a folder of objects, as DigitalHub's partitions."""
    return path.startswith("s3://") and path.endswith("/")


def copy_s3_folder(url: str, tree: Path) -> None:
    """The objects under the prefix `url` into the new folder `tree`, by their names below
    it, read as one bounded download; a name that would leave the folder is refused."""
    from wrapper.entities.s3store import S3Download
    from wrapper.entities.transfer import write_file

    bucket, prefix = _bucket_key(url)
    client = _s3_client()
    download = S3Download(f"cannot read {url}", _s3_reason)
    try:
        with download.bounded():
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
            with download.open(client, bucket, key, ends=False) as body:
                write_file(target, body, f"download s3://{bucket}/{key}")
    finally:
        download.deadline.cancel()


def _open_s3(url: str) -> BinaryIO:
    from wrapper.entities.s3store import S3Download

    bucket, key = _bucket_key(url)
    return S3Download(f"cannot read {url}", _s3_reason).open(_s3_client(), bucket, key)


def _bucket_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise StoreError(f"cannot read {url!r}: expected s3://bucket/key")
    return bucket, key


def _s3_client() -> Any:
    from wrapper.entities.s3store import s3_client

    return s3_client("a dataitem at an s3:// path")  # boto3 is there from here on


def _s3_reason(exc: Exception) -> str:
    """An S3 error's code (NoSuchKey), else the reason `s3_reason` gives."""
    from botocore.exceptions import ClientError

    from wrapper.sources.s3 import s3_error_code, s3_reason

    if isinstance(exc, ClientError):
        return s3_error_code(exc) or "error"
    return s3_reason(exc)

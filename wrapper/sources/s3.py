"""S3 sources: one object (a `.py` file or an archive) or every object under a prefix.

boto3 is an optional extra, imported only here. It finds the endpoint (`AWS_ENDPOINT_URL_S3`,
then `AWS_ENDPOINT_URL`, then the config file), the credentials, the proxy (`HTTPS_PROXY`,
`NO_PROXY`) and the trusted CAs (`AWS_CA_BUNDLE`) itself, so S3 keys go only to the endpoint
the AWS configuration names. A fetch is bounded as http downloads are: one deadline over every
request and body (`watched`), the size cap counted while reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, Optional
from urllib.parse import urlsplit

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceTree
from wrapper.sources.archive import SafeTree
from wrapper.sources.blob import copy_bounded, noted_tree, pinned_tree, tree_from_file, tree_note
from wrapper.sources.cache import CodeCache
from wrapper.sources.http import Deadline
from wrapper.sources.settings import SourceSettings
from wrapper.sources.uri import SourceURI

log = logging.getLogger("wrapper.sources")
_DENIED = "access denied (check the AWS credentials and the bucket policy)"
S3_REASONS = {
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such key",
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "InvalidAccessKeyId": "the endpoint does not know this AWS access key id",
    "SignatureDoesNotMatch": "the AWS secret access key does not match the access key id",
    "PreconditionFailed": "the object changed during the download; try again",
    "PermanentRedirect": "the bucket is in another region (set AWS_REGION)",
}
_TRANSFER: ContextVar[Optional[Deadline]] = ContextVar("s3_transfer", default=None)
"""The deadline of the transfer this thread is running (`deadline_over`), if any."""


class _Object(NamedTuple):
    key: str
    etag: str
    size: int


def materialise_s3(uri: SourceURI, settings: SourceSettings) -> SourceTree:
    """Fetch `s3://bucket/key` (a file or an archive) or `s3://bucket/prefix/` (a folder),
    revalidating cached trees by ETag; one fetch at a time per URI across processes."""
    bucket, key = _bucket_and_key(uri)
    cache = CodeCache(settings.cache_dir)
    with cache.lock(f"s3 {uri.location}"):
        if not key or key.endswith("/"):
            return _prefix_tree(uri, settings, cache, bucket, key)
        return _object_tree(uri, settings, cache, bucket, key)


def _bucket_and_key(uri: SourceURI) -> tuple[str, str]:
    if uri.username or uri.password:
        raise SourceError(
            f"code_src {uri.shown!r}: S3 credentials come from the AWS variables, not the URI"
        )
    parts = urlsplit(uri.location)
    if not parts.hostname:
        raise SourceError(f"code_src {uri.shown!r}: no bucket (s3://bucket/key)")
    return parts.hostname, parts.path[1:] + (f"?{parts.query}" if parts.query else "")


def _object_tree(
    uri: SourceURI, settings: SourceSettings, cache: CodeCache, bucket: str, key: str
) -> SourceTree:
    name = key.rsplit("/", 1)[-1]
    tree = pinned_tree(uri, name, settings)
    if tree is not None:
        log.info("code_src %s: reusing the pinned tree %s", uri.shown, tree.root)
        return tree
    fetch = _Fetch(uri, settings, cache, _client(uri, settings), bucket)
    with fetch.bounded():
        obj = fetch.head(key)
        note_name = f"s3 {fetch.client.meta.endpoint_url} {uri.location} {uri.archive}"
        note = None if uri.sha256 else cache.note(note_name)
        tree = noted_tree(note) if note and note.get("etag") == obj.etag else None
        if tree is not None:
            log.info("code_src %s: unchanged (ETag), reusing %s", uri.shown, tree.root)
            return tree
        fetch.check_size(obj.size, "the object is")
        with cache.scratch() as out:
            fetch.download(obj, out)
            tree = tree_from_file(Path(out.name), uri, settings, name=name)
    cache.remember(note_name, tree_note(tree, etag=obj.etag))
    log.info("code_src %s: fetched %d bytes into %s", uri.shown, obj.size, tree.root)
    return tree


def _prefix_tree(
    uri: SourceURI, settings: SourceSettings, cache: CodeCache, bucket: str, prefix: str
) -> SourceTree:
    if uri.sha256 or uri.archive:
        what = "pinned by sha256" if uri.sha256 else f"read as a {uri.archive} archive"
        raise SourceError(f"code_src {uri.shown!r}: a prefix (ending in /) cannot be {what}")
    fetch = _Fetch(uri, settings, cache, _client(uri, settings), bucket)
    with fetch.bounded():
        objects = fetch.listing(prefix)
        listed = [fetch.client.meta.endpoint_url, uri.location, *objects]
        key = hashlib.sha256(json.dumps(listed).encode()).hexdigest()
        found = cache.find("s3", key)
        if found is not None:
            log.info("code_src %s: unchanged (ETags), reusing %s", uri.shown, found)
            return SourceTree(found)
        fetch.check_size(sum(obj.size for obj in objects), "the objects under the prefix total")
        try:
            folder = cache.tree("s3", key, lambda dest: fetch.fill(dest, prefix, objects))
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"code_src {uri.shown!r}: {exc.message}") from None
    log.info("code_src %s: fetched %d objects into %s", uri.shown, len(objects), folder)
    return SourceTree(folder)


def _client(uri: SourceURI, settings: SourceSettings) -> Any:
    """An S3 client with the fetch's timeouts and one retry (boto3 finds endpoint and keys),
    its requests bounded by the fetch's deadline (`watched`)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise SourceError(
            f"code_src {uri.shown!r}: S3 sources need boto3: pip install 'fn-wrapper[s3]'"
        ) from None
    limits = settings.limits
    config = Config(
        connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
    )
    try:
        return watched(boto3.session.Session().client("s3", config=config))
    except ValueError:
        raise SourceError(
            f"code_src {uri.shown!r}: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL is not a valid URL"
        ) from None
    except BotoCoreError as exc:
        raise SourceError(f"code_src {uri.shown!r}: S3 configuration: {exc}") from None


def s3_error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def s3_reason(exc: Exception) -> str:
    """A short, secret-free reason for a boto failure (no traceback, no request details)."""
    from botocore.exceptions import ClientError, SSLError

    if isinstance(exc, ClientError):
        return S3_REASONS.get(s3_error_code(exc), str(exc))
    if isinstance(exc, SSLError):
        error = exc.kwargs.get("error")  # urllib3's, around the ssl module's
        cause = error.args[0] if error is not None and error.args else error
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message}; see AWS_CA_BUNDLE)"
    return str(exc)


@contextlib.contextmanager
def deadline_over(deadline: Deadline) -> Iterator[None]:
    """Bound by `deadline` the requests this thread makes here through `watched` clients,
    and the reads of their bodies, wherever those happen later."""
    token = _TRANSFER.set(deadline)
    try:
        yield
    finally:
        _TRANSFER.reset(token)


def watched(client: Any) -> Any:
    """`client`, each of its requests bounded by the deadline of the transfer it runs in.

    botocore's timeouts bound each wait only, and it has no hook on its sockets; so the
    client's urllib3 pools (those through a proxy too: they share the table) get connections
    that hand their socket to the current `deadline_over` when they open it (before the proxy
    tunnel and TLS) and before each wait for an answer (a reused connection). The deadline's
    watchdog shuts them when it passes, wherever the transfer is (connect, headers, body).
    Retries share the transfer's deadline, and none is tried once it has passed.
    """
    import botocore.awsrequest as aws

    # botocore's table of pool classes (since 1.11), which its pool managers share
    pools = client._endpoint.http_session._pool_classes_by_scheme
    pools["http"] = _watched_pool(aws.AWSHTTPConnectionPool)
    pools["https"] = _watched_pool(aws.AWSHTTPSConnectionPool)
    client.meta.events.register_first("needs-retry", _no_retry_past_deadline)
    return client


def _watched_pool(base: Any) -> Any:
    """`base` (a botocore connection pool) whose connections `deadline_over` bounds."""

    class Connection(base.ConnectionCls):  # type: ignore[misc]
        timeout: float  # the connect timeout, when a socket is made

        def _new_conn(self) -> socket.socket:
            deadline = _TRANSFER.get()
            if deadline is not None:
                self.timeout = min(self.timeout, deadline.left())
            sock: socket.socket = super()._new_conn()
            if deadline is not None:
                deadline.watch(sock)
            return sock

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            deadline = _TRANSFER.get()
            if deadline is not None and self.sock is not None:
                deadline.watch(self.sock)
            return super().getresponse(*args, **kwargs)

    class Pool(base):  # type: ignore[misc]
        ConnectionCls = Connection

    return Pool


def _no_retry_past_deadline(caught_exception: Optional[Exception] = None, **_: Any) -> None:
    """botocore's `needs-retry` hook: once the transfer's deadline has passed, end it now."""
    deadline = _TRANSFER.get()
    if deadline is not None and deadline.expired:
        raise caught_exception or TimeoutError(deadline.reason())


@dataclass
class _Fetch:
    """One fetch from a bucket: its client, and the limits it shares across objects."""

    uri: SourceURI
    settings: SourceSettings
    cache: CodeCache
    client: Any
    bucket: str
    started: float = field(default_factory=time.monotonic)
    deadline: Deadline = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = Deadline(self.settings.limits.total_timeout)

    @contextlib.contextmanager
    def bounded(self) -> Iterator[None]:
        """Run the fetch's requests before its deadline; boto's failures as one-line
        SourceErrors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with deadline_over(self.deadline):
                yield
        except (ClientError, BotoCoreError, TimeoutError) as exc:
            reason = self.deadline.reason() if self.deadline.expired else s3_reason(exc)
            raise SourceError(f"code_src {self.uri.shown!r}: {reason}") from None
        finally:
            self.deadline.cancel()

    def head(self, key: str) -> _Object:
        """The object's ETag and size; a missing bucket and a missing key are told apart."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if s3_error_code(exc) not in ("404", "NotFound"):
                raise
        else:
            return _Object(key, str(head["ETag"]), int(head["ContentLength"]))
        # HEAD answers a bare 404 for both; listing says NoSuchBucket, and finds a folder
        folder = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{key}/", MaxKeys=1)
        hint = " (a folder: end the URI with /)" if folder.get("KeyCount") else ""
        raise SourceError(f"code_src {self.uri.shown!r}: no such key{hint}")

    def listing(self, prefix: str) -> list[_Object]:
        """The objects under `prefix` (folder markers left out), at most max_members of them."""
        objects: list[_Object] = []
        token: dict[str, str] = {}
        cap = self.settings.archive_limits.max_members
        while True:
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, **token)
            objects += [
                _Object(item["Key"], str(item["ETag"]), int(item["Size"]))
                for item in page.get("Contents", [])
                if not item["Key"].endswith("/")
            ]
            if len(objects) > cap:
                raise SourceError(
                    f"code_src {self.uri.shown!r}: more than max_members={cap} objects"
                )
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        if not objects:
            raise SourceError(f"code_src {self.uri.shown!r}: no objects under this prefix")
        return objects

    def check_size(self, size: int, what: str) -> None:
        """Refuse before downloading what the listing or HEAD says is too big."""
        limit = self.settings.limits.max_download_bytes
        if size > limit:
            raise SourceError(
                f"code_src {self.uri.shown!r}: {what} {size} bytes, over max_download_bytes={limit}"
            )

    def download(self, obj: _Object, out: IO[bytes]) -> int:
        """GET the object as listed (If-Match its ETag) into `out`, within the fetch's limits."""
        response = self.client.get_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.etag)
        with contextlib.closing(response["Body"]) as body:
            size = copy_bounded(
                body.read, out, uri=self.uri, settings=self.settings, started=self.started
            )
        if self.deadline.expired:  # the watchdog cut the body short
            raise SourceError(f"code_src {self.uri.shown!r}: {self.deadline.reason()}")
        out.flush()
        return size

    def fill(self, dest: Path, prefix: str, objects: list[_Object]) -> None:
        """Write each object under `dest` at its key relative to `prefix`, checked as archive
        members are (no `..`, no absolute names, member and size caps)."""
        tree = SafeTree(dest, self.settings.archive_limits)
        tree.count(len(objects))
        total = 0
        for obj in objects:
            with self.cache.scratch() as out:
                total += self.download(obj, out)
                self.check_size(total, "the objects under the prefix total")
                out.seek(0)
                tree.write(obj.key[len(prefix) :], out, executable=False)
        tree.finish()

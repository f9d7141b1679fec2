"""The S3 store: entity versions and run documents in a bucket (DESIGN §5).

Layout under `s3://bucket/prefix`: `entities/<project>/<entity_type>/<name>/<id>/entity.json`
(the record) beside `.../<id>/content/<filename>`, and `runs/<project>/<run_id>.json`. Content
is streamed (multipart past one part) and entity.json is written last: one atomic PUT makes a
version visible (a removal deletes it first). boto3 is an optional extra, imported only here; it
finds the endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), the credentials, the proxy and
the trusted CAs itself, as S3 sources do. Content is read as code downloads are
(`S3Download`): within the `FN_WRAPPER_*` download limits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Callable, Optional
from urllib.parse import urlsplit

from wrapper.entities.keys import EntityKey, is_name
from wrapper.entities.record import EntityRecord
from wrapper.entities.store import (
    CHUNK,
    Store,
    StoreError,
    content_filename,
    newest_runs,
)
from wrapper.entities.transfer import Progress
from wrapper.sources.http import Deadline
from wrapper.sources.s3 import S3_REASONS, deadline_over, s3_error_code, s3_reason, watched
from wrapper.sources.settings import FetchLimits

PART = 8 * CHUNK
"""Content up to this size is one PUT; larger content is uploaded in parts of this size."""

_READERS = 8
"""entity.json (or run) documents read at once when listing versions (or runs)."""
_BATCH = 1000
"""Keys one DeleteObjects request deletes at most (the S3 limit)."""


class S3Store(Store):
    """Entity versions and run documents under `s3://bucket/prefix`."""

    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        if "@" in parts.netloc:
            raise StoreError("--store: S3 credentials come from the AWS variables, not the URI")
        segments = [segment for segment in parts.path.split("/") if segment]
        if parts.scheme != "s3" or not parts.netloc or {".", ".."} & set(segments):
            raise StoreError(f"--store {uri!r}: expected s3://bucket/prefix")
        self.bucket = parts.netloc
        self.uri = "/".join([f"s3://{self.bucket}", *segments])
        self._root = "".join(f"{segment}/" for segment in segments)
        self._client = s3_client()

    def put(self, record: EntityRecord, content: Optional[BinaryIO], filename: str) -> EntityRecord:
        EntityKey.parse(str(record.key), "record")  # every part is one safe key segment
        folder = self._entities(record.project, record.entity_type, record.name, record.id)
        if content is not None:
            from boto3.s3.transfer import TransferConfig

            key = f"{folder}content/{content_filename(filename, record.name)}"
            reader = _HashingReader(content, Progress(f"upload s3://{self.bucket}/{key}", None))
            config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
            with self._errors("write", key):
                self._client.upload_fileobj(reader, self.bucket, key, Config=config)
            reader.progress.finish()
            record.size, record.sha256 = reader.size, reader.sha256.hexdigest()
            record.spec["path"] = f"s3://{self.bucket}/{key}"
        self._put_json(f"{folder}entity.json", record.to_dict())
        return record

    def versions(
        self,
        project: Optional[str] = None,
        entity_type: Optional[str] = None,
        name: Optional[str] = None,
    ) -> list[EntityRecord]:
        wanted = (project, entity_type, name)
        if not all(is_name(part) for part in wanted if part is not None):
            return []  # no key has such a part
        root = self._entities()
        given = itertools.takewhile(lambda part: part is not None, wanted)
        prefix = self._entities(*map(str, given))
        listed = self._list(prefix)
        keys = [key for key in listed if _is_version(key[len(root) :].split("/"), wanted)]
        with ThreadPoolExecutor(_READERS) as pool:
            found = list(pool.map(self._get_record, keys))
        return sorted(found, key=lambda record: (record.created_ns, record.id), reverse=True)

    def version(self, project: str, entity_type: str, name: str, id: str) -> EntityRecord:
        if not all(is_name(part) for part in (project, entity_type, name, id)):
            raise self._no_version(project, entity_type, name, id)
        try:
            return self._get_record(f"{self._entities(project, entity_type, name, id)}entity.json")
        except FileNotFoundError:
            raise self._no_version(project, entity_type, name, id) from None

    def remove(self, record: EntityRecord) -> None:
        where = (record.project, record.entity_type, record.name, record.id)
        if not all(is_name(part) for part in where):
            raise self._no_version(*where)
        folder = self._entities(*where)
        try:
            self._read_json(f"{folder}entity.json")  # a broken document is removed too
        except FileNotFoundError:
            raise self._no_version(*where) from None
        with self._errors("delete", f"{folder}entity.json"):
            self._client.delete_object(Bucket=self.bucket, Key=f"{folder}entity.json")
        keys = self._list(folder)  # the content, and whatever else is under the version
        for start in range(0, len(keys), _BATCH):
            batch = [{"Key": key} for key in keys[start : start + _BATCH]]
            with self._errors("delete", folder):
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            for failed in answer.get("Errors", [])[:1]:
                code = str(failed.get("Code", ""))
                raise StoreError(
                    f"S3 store: cannot delete s3://{self.bucket}/{failed.get('Key')}:"
                    f" {S3_REASONS.get(code, code)}"
                )

    def update(self, record: EntityRecord) -> None:
        where = (record.project, record.entity_type, record.name, record.id)
        self._check_update(self.version(*where), record)
        self._put_json(f"{self._entities(*where)}entity.json", record.to_dict())

    def open(self, record: EntityRecord) -> BinaryIO:
        folder = self._entities(record.project, record.entity_type, record.name, record.id)
        prefix = f"s3://{self.bucket}/{folder}content/"
        if record.sha256 is None or not record.path.startswith(prefix):
            raise StoreError(
                f"{str(record.key)!r}: the store {self.uri} holds no content for it "
                f"(its path is {record.path!r})"
            )
        key = record.path[len(f"s3://{self.bucket}/") :]
        where = f"S3 store: cannot read s3://{self.bucket}/{key}"
        return S3Download(where).open(self._client, self.bucket, key)

    def put_run(self, document: dict[str, Any]) -> None:
        project, run_id = str(document.get("project")), str(document.get("id"))
        if not (is_name(project) and is_name(run_id)):
            raise StoreError(f"a run document's project {project!r} or id {run_id!r} is no name")
        self._put_json(f"{self._root}runs/{project}/{run_id}.json", document)

    def get_run(self, project: str, run_id: str) -> dict[str, Any]:
        missing = self._no_run(project, run_id)
        if not (is_name(project) and is_name(run_id)):
            raise missing
        try:
            return self._get_json(f"{self._root}runs/{project}/{run_id}.json")
        except FileNotFoundError:
            raise missing from None

    def remove_run(self, project: str, run_id: str) -> None:
        if not (is_name(project) and is_name(run_id)):
            raise self._no_run(project, run_id)
        key = f"{self._root}runs/{project}/{run_id}.json"
        from botocore.exceptions import ClientError

        with self._errors("delete", key):
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if s3_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                    raise self._no_run(project, run_id) from None
                raise
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def runs(self, project: Optional[str] = None) -> list[dict[str, Any]]:
        if project is not None and not is_name(project):
            return []  # no run is kept under such a name
        root = f"{self._root}runs/"
        listed = self._list(root if project is None else f"{root}{project}/")
        keys = [key for key in listed if _is_run(key[len(root) :].split("/"))]
        with ThreadPoolExecutor(_READERS) as pool:
            found = list(pool.map(self._read_run, keys))
        return newest_runs(document for document in found if document is not None)

    def _entities(self, *parts: str) -> str:
        """The key prefix `entities/<part>/.../` under the store's prefix."""
        return self._root + "".join(f"{part}/" for part in ("entities", *parts))

    def _list(self, prefix: str) -> list[str]:
        """Every key under `prefix`, page after page."""
        with self._errors("list", prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def _put_json(self, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        with self._errors("write", key):
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )

    def _get_json(self, key: str) -> dict[str, Any]:
        """The JSON object at `key`; FileNotFoundError when there is no such key."""
        document = self._read_json(key)
        if not isinstance(document, dict):
            raise StoreError(f"S3 store: s3://{self.bucket}/{key} is not a JSON object")
        return document

    def _read_run(self, key: str) -> Optional[dict[str, Any]]:
        """The run document at `key`; None when it is gone or not a JSON object."""
        try:
            document = self._read_json(key)
        except FileNotFoundError:
            return None
        return document if isinstance(document, dict) else None

    def _read_json(self, key: str) -> Any:
        """The JSON value at `key` (None when it is not JSON); FileNotFoundError when there is
        no such key."""
        from botocore.exceptions import ClientError

        with self._errors("read", key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if s3_error_code(exc) == "NoSuchKey":
                    raise FileNotFoundError(key) from None
                raise
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        try:
            return json.loads(data)
        except ValueError:
            return None

    def _get_record(self, key: str) -> EntityRecord:
        document = self._get_json(key)
        try:
            return EntityRecord.from_dict(document)
        except (KeyError, TypeError, ValueError):
            raise StoreError(
                f"S3 store: s3://{self.bucket}/{key} is not an entity document"
            ) from None

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn boto errors into one-line StoreErrors naming the object (no request details)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            where = f"s3://{self.bucket}/{key}"
            raise StoreError(f"S3 store: cannot {action} {where}: {s3_reason(exc)}") from None


def _is_version(parts: list[str], wanted: tuple[Optional[str], ...]) -> bool:
    """Whether the parts of a key under `entities/` are those of an entity.json, as wanted."""
    return (
        len(parts) == 5
        and parts[4] == "entity.json"
        and all(part in (None, has) for part, has in zip(wanted, parts))
    )


def _is_run(parts: list[str]) -> bool:
    """Whether the parts of a key under `runs/` are those of a run document."""
    return (
        len(parts) == 2
        and is_name(parts[0])
        and parts[1].endswith(".json")
        and is_name(parts[1][: -len(".json")])
    )


def s3_client(user: str = "the S3 store") -> Any:
    """An S3 client with the FN_WRAPPER_* connect and read timeouts and bounded retries
    (boto3 finds endpoint and keys), whose requests `S3Download` bounds as a whole; for the
    store and for dataitems at s3:// paths (`user`, in the message when boto3 is missing)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError:
        raise StoreError(f"{user} needs boto3: pip install 'fn-wrapper[s3]'") from None
    limits = download_limits(user)
    config = Config(
        connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
        retries={"mode": "standard"},
    )
    try:
        return watched(boto3.session.Session().client("s3", config=config))
    except ValueError:
        raise StoreError(
            "S3 store: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL is not a valid URL"
        ) from None
    except BotoCoreError as exc:
        raise StoreError(f"S3 store: S3 configuration: {exc}") from None


class _HashingReader:
    """Reads a stream in full pieces (a short read would make a short part), counting and
    hashing what passes."""

    def __init__(self, stream: BinaryIO, progress: Progress) -> None:
        self._stream = stream
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        pieces = [self._stream.read(size)]
        got = len(pieces[0])
        while 0 < got < size:
            piece = self._stream.read(size - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        data = b"".join(pieces)
        self.size += len(data)
        self.sha256.update(data)
        self.progress.advance(len(data))
        return data


def download_limits(where: str) -> FetchLimits:
    """The limits the FN_WRAPPER_* download variables set; a bad one is a StoreError."""
    try:
        return FetchLimits.from_environ(os.environ)
    except ValueError as exc:
        raise StoreError(f"{where}: {exc}") from None


class S3Download:
    """Reads from S3 bounded as one (an object, or a folder's objects), as code downloads
    are: one deadline over their requests (retries included) and bodies, one size cap
    counted while reading, both from the FN_WRAPPER_* download variables. A failure is a
    StoreError `{where}: {reason}` and ends the download."""

    def __init__(self, where: str, reason: Callable[[Exception], str] = s3_reason) -> None:
        self.limits = download_limits(where)
        self.where, self._reason = where, reason
        self.deadline = Deadline(self.limits.total_timeout)
        self._size = 0

    @contextlib.contextmanager
    def bounded(self) -> Iterator[None]:
        """Run requests (and body reads) before the deadline; boto's failures as StoreErrors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with deadline_over(self.deadline):
                yield
        except (BotoCoreError, ClientError, TimeoutError) as exc:
            self.deadline.cancel()
            reason = self.deadline.reason() if self.deadline.expired else self._reason(exc)
            raise StoreError(f"{self.where}: {reason}") from None

    def open(self, client: Any, bucket: str, key: str, ends: bool = True) -> BinaryIO:
        """A stream over s3://bucket/key; its end (or close) ends the download if it `ends`
        (a folder's objects share one)."""
        with self.bounded():
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        return io.BufferedReader(_Body(body, self, ends), CHUNK)

    def count(self, size: int) -> None:
        """`size` more bytes arrived: a StoreError past the deadline or the size cap."""
        self._size += size
        limit = self.limits.max_download_bytes
        if self.deadline.expired:  # the watchdog cut a body short
            reason = self.deadline.reason()
        elif self._size > limit:
            reason = f"larger than max_download_bytes={limit} (FN_WRAPPER_MAX_DOWNLOAD_SIZE)"
        else:
            return
        self.deadline.cancel()
        raise StoreError(f"{self.where}: {reason}")


class _Body(io.RawIOBase):
    """An object's body, read in pieces within its download's bounds."""

    def __init__(self, body: Any, download: S3Download, ends: bool) -> None:
        super().__init__()
        self._body, self._download, self._ends = body, download, ends

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._download.bounded():
            data = self._body.read(len(buffer))
        self._download.count(len(data))
        buffer[: len(data)] = data
        if not data and self._ends:
            self._download.deadline.cancel()  # read to the end: nothing left to bound
        return len(data)

    def close(self) -> None:
        if self._ends:
            self._download.deadline.cancel()
        self._body.close()
        super().close()

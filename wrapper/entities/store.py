"""What every store does, and `open_store(uri)` choosing one (DESIGN §5).

A store keeps entity versions (content, then metadata, so a version is visible only whole;
a removal goes the other way) and run status documents. `file:///path` (or a plain path) is
the embedded local store; `s3://bucket/prefix` keeps everything in a bucket (boto3, imported
only then).
"""

from __future__ import annotations

import abc
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Union

from wrapper.entities.keys import EntityKey, is_key
from wrapper.entities.record import EntityRecord
from wrapper.errors import ExitCode, SpecError, WrapperError

CHUNK = 1024 * 1024
"""Content is copied in pieces of this size: never read whole into memory."""

_FILENAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")


class EntityNotFound(SpecError):
    """No entity (or no version) answers a key or a name."""


class StoreError(WrapperError):
    """The store cannot be opened, read or written: its setting or the storage behind it
    (exit 2, the nearest code of the table: the run's input was bad, the user can act)."""

    exit_code = ExitCode.BAD_INPUT


def content_filename(name: Optional[str], fallback: str) -> str:
    """The file name a version's content is kept under: `name` when it is one safe path
    segment, else `fallback` (an entity name, always safe)."""
    if name and _FILENAME.fullmatch(name) and ".." not in name:
        return name
    return fallback


class Store(abc.ABC):
    """Entity versions and run documents, behind one URI."""

    uri: str

    @abc.abstractmethod
    def put(self, record: EntityRecord, content: Optional[BinaryIO], filename: str) -> EntityRecord:
        """Keep a new version. With `content`, the bytes are streamed into the store as
        `filename` (see content_filename) and `record` gets its size, sha256 and spec path;
        without, `record.spec["path"]` already says where the content is (a remote path).
        The metadata is written last: a writer killed before that leaves nothing visible."""

    @abc.abstractmethod
    def versions(
        self,
        project: Optional[str] = None,
        entity_type: Optional[str] = None,
        name: Optional[str] = None,
    ) -> list[EntityRecord]:
        """Every version that matches, newest first (the latest-version rule)."""

    @abc.abstractmethod
    def version(self, project: str, entity_type: str, name: str, id: str) -> EntityRecord:
        """One version by id; EntityNotFound when there is none."""

    @abc.abstractmethod
    def open(self, record: EntityRecord) -> BinaryIO:
        """The content the store holds for `record`, as a stream read in pieces."""

    @abc.abstractmethod
    def remove(self, record: EntityRecord) -> None:
        """Delete a version: its metadata first (so "by name" finds the previous version at
        once), then the content the store holds for it; EntityNotFound when there is none."""

    @abc.abstractmethod
    def update(self, record: EntityRecord) -> None:
        """Rewrite a kept version's metadata (labels, spec, metrics, description), content
        untouched; EntityNotFound when there is none (see _check_update for what stays)."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open
        """Let go of what the store holds open (connections); a closed store is not used."""

    def local_file(self, record: EntityRecord) -> Optional[Path]:
        """The content as a file on this machine, when the store keeps it as one."""
        return None

    @abc.abstractmethod
    def put_run(self, document: dict[str, Any]) -> None:
        """Write a run's status document (`project` and `id` in it) whole, replacing it."""

    @abc.abstractmethod
    def get_run(self, project: str, run_id: str) -> dict[str, Any]:
        """A run's status document; EntityNotFound when there is none."""

    @abc.abstractmethod
    def remove_run(self, project: str, run_id: str) -> None:
        """Delete a run's status document (the versions it made stay); EntityNotFound when
        there is none."""

    @abc.abstractmethod
    def runs(self, project: Optional[str] = None) -> list[dict[str, Any]]:
        """The run documents of `project` (of every project when None), newest first (see
        newest_runs); a document that is not a JSON object is skipped."""

    def _no_run(self, project: str, run_id: str) -> EntityNotFound:
        """The error for a missing run, worded alike by every store and operation."""
        return EntityNotFound(f"no run {run_id!r} in project {project!r} (store {self.uri})")

    def _no_version(self, project: str, entity_type: str, name: str, id: str) -> EntityNotFound:
        """The error for a missing version, worded alike by every store and operation."""
        return EntityNotFound(
            f"no version {id!r} of {entity_type} {name!r} in project {project!r} (store {self.uri})"
        )

    def _check_update(self, stored: EntityRecord, record: EntityRecord) -> None:
        """Refuse an update that would change a version's kind, creation time or content:
        those make a new version (and the latest-version rule reads the creation time)."""

        def kept(version: EntityRecord) -> tuple[Any, ...]:
            return (version.key, version.created_ns, version.size, version.sha256, version.path)

        if kept(record) != kept(stored):
            raise StoreError(
                f"{str(stored.key)!r}: an update cannot change its kind, creation time or"
                f" content; put a new version instead (store {self.uri})"
            )

    def latest(self, project: str, entity_type: str, name: str) -> EntityRecord:
        """The newest version of an entity; EntityNotFound when it has none."""
        found = self.versions(project, entity_type, name)
        if not found:
            raise EntityNotFound(
                f"no {entity_type} named {name!r} in project {project!r} (store {self.uri})"
            )
        return found[0]

    def find(
        self, reference: Union[str, EntityKey], project: str, entity_type: str, field: str
    ) -> EntityRecord:
        """The version a key names (its latest without an id), or the latest of a name in
        `project`. A key of another entity type or of another kind than the version found
        is EntityNotFound, naming `field`."""
        if isinstance(reference, str) and not is_key(reference):
            if not reference:
                raise EntityNotFound(f"{field}: an empty {entity_type} name")
            return self.latest(project, entity_type, reference)
        key = reference if isinstance(reference, EntityKey) else EntityKey.parse(reference, field)
        if key.entity_type != entity_type:
            raise EntityNotFound(
                f"{field}: {str(key)!r} is a {key.entity_type}, not a {entity_type}"
            )
        try:
            if key.id:
                record = self.version(key.project, key.entity_type, key.name, key.id)
            else:
                record = self.latest(key.project, key.entity_type, key.name)
        except EntityNotFound as exc:
            raise EntityNotFound(f"{field}: {str(key)!r}: {exc.message}") from None
        if record.kind != key.kind:
            raise EntityNotFound(
                f"{field}: {str(key)!r}: the {entity_type} {key.name!r} is of kind "
                f"{record.kind!r}, not {key.kind!r}"
            )
        return record


def newest_runs(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run documents newest first by their ISO-8601 `started` (UTC text sorts as time), those
    without it last; ties by id, highest first, as versions are."""

    def order(document: dict[str, Any]) -> tuple[bool, str, str]:
        started, id = document.get("started"), str(document.get("id") or "")
        return (True, started, id) if isinstance(started, str) else (False, "", id)

    return sorted(documents, key=order, reverse=True)


def default_store_uri() -> str:
    """`$XDG_DATA_HOME/fn-wrapper/store`, else `~/.local/share/fn-wrapper/store`."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data_home, "fn-wrapper", "store").as_uri()


def open_store(uri: Optional[str] = None) -> Store:
    """The store a `--store` value names (default: the embedded local store)."""
    return store_opener(uri)()


def store_opener(uri: Optional[str] = None) -> Callable[[], Store]:
    """What opens the store a `--store` value names: the value is checked now (a StoreError
    naming `--store`), the store made (folders, connections) only when it is called."""
    uri = uri or default_store_uri()
    if uri.startswith("s3://"):
        return functools.partial(_s3_store, uri)
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"--store {uri!r}: a file:// store must be on this machine")
        path = Path(unquote(parts.path))
    elif "://" in uri:
        raise StoreError(f"--store {uri!r}: expected file:///path, a path, or s3://bucket/prefix")
    else:
        path = Path(uri)
    return functools.partial(_local_store, path.expanduser().absolute())


def _s3_store(uri: str) -> Store:
    from wrapper.entities.s3store import S3Store

    return S3Store(uri)


def _local_store(path: Path) -> Store:
    from wrapper.entities.local import LocalStore

    return LocalStore(path)

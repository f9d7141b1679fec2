"""The objects handed to handlers: DataItem, Artifact and Model (DESIGN §5).

Content is fetched when asked for and streamed: `open()` gives a stream, `download()` writes a
file whole or not at all, `as_file()` gives a local file (the store's own when it has one),
and only `as_df()` reads a whole dataitem, into a pandas DataFrame.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Optional, Union
from urllib.parse import urlsplit

from wrapper.entities.record import EntityRecord
from wrapper.entities.remote import open_remote
from wrapper.entities.store import Store, StoreError
from wrapper.entities.transfer import write_file
from wrapper.errors import SpecError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".tsv": "csv"}
"""File extensions `as_df` recognises when the dataitem does not say its format."""


class Entity:
    """One version of an entity, bound to the store that keeps it."""

    def __init__(self, record: EntityRecord, store: Store) -> None:
        self.record = record
        self.store = store
        self._local: Optional[str] = None

    @property
    def key(self) -> str:
        """store://… with this version's id."""
        return str(self.record.key)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def project(self) -> str:
        return self.record.project

    @property
    def labels(self) -> dict[str, str]:
        return self.record.labels

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    @property
    def path(self) -> str:
        """Where the content is: in the store, or remote (http(s), s3)."""
        return self.record.path

    @property
    def filename(self) -> str:
        """The content's file name (the last segment of its path)."""
        return PurePosixPath(urlsplit(self.path).path).name or self.name

    def open(self) -> BinaryIO:
        """The content as a stream, read in pieces."""
        if self.record.sha256 is not None:
            return self.store.open(self.record)
        return open_remote(self.path)

    @property
    def is_folder(self) -> bool:
        """Whether the content is a folder (kept as one zip, unpacked by download())."""
        return self.spec.get("archive") == "zip"

    def download(self, destination: Union[str, Path, None] = None, overwrite: bool = False) -> str:
        """Write the content to `destination` (a file, or a folder to put it in; default the
        working folder) whole or not at all; the file's path (a folder's, for a folder)."""
        target = Path(destination) if destination is not None else Path.cwd()
        if target.is_dir():
            target = target / (self.name if self.is_folder else self.filename)
        if target.exists() and not overwrite:
            raise StoreError(f"{target} exists: pass overwrite=True to replace it")
        if self.is_folder:
            _unpack(self, target)
            return str(target)
        with self.open() as stream:
            write_file(target, stream, f"download {self.key}", self.record.size)
        return str(target)

    def as_file(self) -> str:
        """A local file with the content: the store's own file when it keeps one, else a
        download into a temporary folder (once per object, removed when the process exits)."""
        if self._local is None:
            held = self._held()
            self._local = held or self.download(_temporary_folder())
        return self._local

    def _held(self) -> Optional[str]:
        """The file the store itself keeps with the content (a local store's), or None."""
        if self._local is not None:
            return self._local
        keeps = self.record.sha256 and not self.is_folder
        held = self.store.local_file(self.record) if keeps else None
        return str(held) if held else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class DataItem(Entity):
    """Data, usually a table: `as_df()` reads it into a pandas DataFrame."""

    def as_df(
        self, file_format: Optional[str] = None, engine: Optional[str] = "pandas", **options: Any
    ) -> Any:
        """The dataitem as a DataFrame (CSV or Parquet); `engine` is the DataFrame library
        (DigitalHub's argument: only pandas here); `options` go to pandas' reader."""
        if engine not in (None, "pandas"):
            raise SpecError(f"{self.key}: as_df(engine={engine!r}): only 'pandas' is supported")
        pandas = _pandas(self.key)
        form = (file_format or self.spec.get("format") or self._format()).lower()
        if form == "csv":
            if Path(self.filename).suffix == ".tsv":
                options.setdefault("sep", "\t")
            with self.open() as stream:
                return pandas.read_csv(stream, **options)
        if form == "parquet":
            held = self._held()
            if held:
                return pandas.read_parquet(held, **options)
            with tempfile.TemporaryDirectory(prefix="fn-wrapper-entity-") as folder:
                return pandas.read_parquet(self.download(folder), **options)  # a seekable file
        raise SpecError(f"{self.key}: cannot read format {form!r} as a DataFrame (csv, parquet)")

    def _format(self) -> str:
        suffix = Path(self.filename).suffix.lower()
        if suffix not in READERS:
            raise SpecError(
                f"{self.key}: cannot tell the format of {self.filename!r}: "
                "pass file_format='csv' or 'parquet'"
            )
        return READERS[suffix]


class Artifact(Entity):
    """A file (or any content) a run consumed or produced."""


class Model(Entity):
    """A trained model: its files and what made it."""

    @property
    def framework(self) -> Optional[str]:
        value = self.spec.get("framework")
        return None if value is None else str(value)


CLASSES: dict[str, type[Entity]] = {"dataitem": DataItem, "artifact": Artifact, "model": Model}


def entity_object(record: EntityRecord, store: Store) -> Entity:
    """The object for one version, by its entity type."""
    return CLASSES[record.entity_type](record, store)


def _unpack(entity: Entity, target: Path) -> None:
    """A folder entity's zip unpacked into `target`, whole or not at all (into a temporary
    folder beside it, then renamed). It goes through the checks code archives get (names that
    leave the folder, links, devices) and is cut off past the sizes its zip declares."""
    import shutil
    import zipfile

    from wrapper.errors import UnsafeArchiveError
    from wrapper.sources.archive import unpack_archive
    from wrapper.sources.settings import ArchiveLimits

    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise StoreError(f"{entity.key}: cannot unpack into {target}: {exc.strerror}") from None
    try:
        packed = work / "content.zip"
        with entity.open() as stream:
            write_file(packed, stream, f"download {entity.key}", entity.record.size)
        with zipfile.ZipFile(packed) as archive:
            members = archive.infolist()
        limits = ArchiveLimits(len(members) + 1, sum(m.file_size for m in members))
        (work / "folder").mkdir()
        unpack_archive(packed, work / "folder", limits)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(work / "folder", target)
    except (OSError, zipfile.BadZipFile, UnsafeArchiveError) as exc:
        raise StoreError(f"{entity.key}: cannot unpack into {target}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _temporary_folder() -> str:
    """A new temporary folder, removed (with what is in it) when the process exits."""
    folder = tempfile.mkdtemp(prefix="fn-wrapper-entity-")
    if not _TEMPORARY:
        import atexit

        atexit.register(_remove_temporaries)
    _TEMPORARY.append(folder)
    return folder


def _remove_temporaries() -> None:
    import shutil

    while _TEMPORARY:
        shutil.rmtree(_TEMPORARY.pop(), ignore_errors=True)


_TEMPORARY: list[str] = []


def _pandas(key: str) -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError:
        raise SpecError(f"{key}: as_df() needs pandas: pip install 'fn-wrapper[data]'") from None

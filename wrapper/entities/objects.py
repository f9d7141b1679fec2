"""The objects handed to handlers: DataItem, Artifact and Model (DESIGN §5), with DigitalHub
0.15's methods, arguments and return values (its `_base/material/entity.py`,
`dataitem/table/entity.py`, `_base/metrics/entity.py`).

Content is fetched when asked for and streamed: `open()` gives a stream, `download()` writes
files whole or not at all, `as_file()` gives a local path (the store's own file when it keeps
one), and only `as_df()` reads a whole dataitem, into a pandas DataFrame.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Optional, Union
from urllib.parse import urlsplit

from wrapper.entities import frames, metrics
from wrapper.entities.record import EntityRecord, Labels, RecordView, checked_labels
from wrapper.entities.remote import copy_s3_folder, is_s3_folder, local_path, open_remote
from wrapper.entities.scratch import scratch_folder
from wrapper.entities.store import Store, StoreError
from wrapper.entities.transfer import write_file
from wrapper.errors import SpecError, UnsafeArchiveError

if TYPE_CHECKING:
    from wrapper.entities.run import Run


class EntityMetadata:
    """An entity's metadata as DigitalHub shows it (`entity.metadata.labels`); labels and
    description may be changed, then kept with `entity.save(update=True)`."""

    def __init__(self, record: EntityRecord) -> None:
        self._record = record

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def version(self) -> str:
        return self._record.id

    @property
    def created(self) -> str:
        return self._record.created

    @property
    def labels(self) -> Labels:
        return self._record.labels

    @labels.setter
    def labels(self, value: Labels) -> None:
        self._record.labels = checked_labels(value)

    @property
    def description(self) -> Optional[str]:
        return self._record.description

    @description.setter
    def description(self, value: Optional[str]) -> None:
        self._record.description = value


class Entity(RecordView):
    """One version of an entity, bound to the store that keeps it and, inside a run, to the
    run (whose own folder takes downloads with no destination)."""

    def __init__(self, record: EntityRecord, store: Store, run: Optional[Run] = None) -> None:
        self.record = record
        self.store = store
        self.run = run
        self._local: Optional[str] = None

    @property
    def project(self) -> str:
        return self.record.project

    @property
    def labels(self) -> Labels:
        return self.record.labels

    @property
    def metadata(self) -> EntityMetadata:
        return EntityMetadata(self.record)

    @property
    def path(self) -> str:
        """Where the content is: in the store, remote (http(s), s3) or a local path."""
        return self.record.path

    @property
    def filename(self) -> str:
        """The content's file name (the last segment of its path)."""
        return PurePosixPath(urlsplit(self.path).path).name or self.name

    def open(self) -> BinaryIO:
        """The content as a stream, read in pieces (a folder's: its zip)."""
        if self.record.sha256 is not None:
            return self.store.open(self.record)
        return open_remote(self.path)

    @property
    def is_folder(self) -> bool:
        """Whether the content is a folder: logged from one (kept as one zip), or registered
        in place (a folder on this machine, an s3:// prefix)."""
        if self.spec.get("archive") == "zip":
            return True
        if self.record.sha256 is None and is_s3_folder(self.path):
            return True
        local = self._registered()
        return local is not None and local.is_dir()

    def download(self, destination: Union[str, Path, None] = None, overwrite: bool = False) -> str:
        """Write the content under `destination` and return its path, as DigitalHub does: a
        destination with no suffix (or a folder) is a folder that takes the file under its
        own name, else it is the file; a folder's files go into the destination folder (the
        path returned is the folder's, or its one file's). Files are written whole or not at
        all, and an existing one is an error unless `overwrite`. With no destination: a
        folder named after the entity type in the run's own folder (outside a run, the
        process's), never the working folder, so two runs or workers never collide."""
        base = Path(destination) if destination is not None else self._default_folder()
        if self.is_folder:
            return self._download_folder(base, overwrite)
        is_folder = base.is_dir() or (not base.exists() and not base.suffix)
        target = base / self.filename if is_folder else base
        if target.exists() and not overwrite:
            raise StoreError(f"{target} exists: pass overwrite=True to replace it")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot download into {target.parent}: {exc.strerror}") from None
        with self.open() as stream:
            write_file(target, stream, f"download {self.key}", self.record.size)
        return str(target)

    def as_file(self) -> str:
        """A local path with the content, one string (DigitalHub 0.15's annotation says a
        list, its code returns the path): the store's own file, or the file or folder
        registered on this machine, when there is one (no copy: read it, do not change it);
        else a download into a new temporary folder (once per object, removed when the
        process exits)."""
        if self._local is None:
            self._local = self._held() or self.download(scratch_folder())
        return self._local

    def save(self, update: bool = False) -> Entity:
        """Keep changed metadata, spec or metrics of this version in the store (DigitalHub's
        `save(update=True)`; a version's content never changes)."""
        self.store.update(self.record)
        return self

    def _held(self) -> Optional[str]:
        """The content as a path on this machine without copying it, or None."""
        if self.record.sha256 is not None and not self.is_folder:
            held = self.store.local_file(self.record)
            return str(held) if held else None
        local = self._registered()
        return str(local) if local is not None and local.exists() else None

    def _registered(self) -> Optional[Path]:
        """The local path the content was registered at (new_* of a local path), or None."""
        return None if self.record.sha256 is not None else local_path(self.path)

    def _default_folder(self) -> Path:
        owner = self.run.folder if self.run is not None else _process_folder()
        return owner / self.record.entity_type

    def _download_folder(self, base: Path, overwrite: bool) -> str:
        """The folder's files placed under `base`, after checking none is there already
        (unless `overwrite`)."""
        import shutil
        import zipfile

        try:
            base.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{self.name}.", dir=base))
        except OSError as exc:
            raise StoreError(f"{self.key}: cannot download into {base}: {exc.strerror}") from None
        try:
            tree = work / "folder"
            self._copy_folder(tree)
            files = sorted(p.relative_to(tree) for p in tree.rglob("*") if p.is_file())
            taken = [name for name in files if (base / name).exists()]
            if taken and not overwrite:
                raise StoreError(f"{base / taken[0]} exists: pass overwrite=True to replace it")
            for name in files:
                (base / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tree / name, base / name)
        except (OSError, zipfile.BadZipFile, UnsafeArchiveError) as exc:
            raise StoreError(f"{self.key}: cannot unpack into {base}: {exc}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return str(base / files[0]) if len(files) == 1 else str(base)

    def _copy_folder(self, tree: Path) -> None:
        """The folder's files into the new folder `tree`: a registered folder's regular
        files (links skipped), an s3:// prefix's objects, or the kept zip unpacked through
        the checks code archives get (names that leave the folder, links, devices; cut off
        past its declared sizes)."""
        import shutil

        if self.record.sha256 is None and is_s3_folder(self.path):
            copy_s3_folder(self.path, tree)
            return
        registered = self._registered()
        if registered is not None:
            for top, _folders, names in os.walk(registered):
                for name in names:
                    source = Path(top, name)
                    if not source.is_symlink():
                        target = tree / source.relative_to(registered)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(source, target)
            tree.mkdir(exist_ok=True)
            return
        _unpack(self, tree)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class DataItem(Entity):
    """Data, usually a table: `as_df()` reads it into a pandas DataFrame."""

    def as_df(
        self, file_format: Optional[str] = None, engine: Optional[str] = "pandas", **kwargs: Any
    ) -> Any:
        """The dataitem as a DataFrame: csv, parquet, json, xls/xlsx, txt (as csv), told by
        `file_format`, else by the format it was kept in, its suffix or (over http) its
        content type; a folder's files are read one after the other. `engine` is DigitalHub's
        choice of DataFrame library (only pandas here); `kwargs` go to pandas' reader."""
        if engine not in (None, "pandas"):
            raise SpecError(f"{self.key}: as_df(engine={engine!r}): only 'pandas' is supported")
        asked = file_format.lower() if file_format else None
        if self.is_folder:
            local = Path(self.as_file())  # a folder, or the path of its one file
            files = (
                sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
            )
            return frames.concat_frames(self.key, [self._read(asked, p, kwargs) for p in files])
        held = self._held()
        if held is not None:
            return self._read(asked or self.spec.get("format"), Path(held), kwargs, self.filename)
        with self.open() as stream:
            content_type = _content_type(stream)
            form = frames.frame_format(
                self.key, asked, self.spec.get("format"), self.filename, content_type
            )
            if form not in frames.SEEKABLE:
                return frames.read_frame(self.key, form, stream, self.filename, kwargs)
            with tempfile.TemporaryDirectory(prefix="fn-wrapper-frame-") as temporary:
                local = Path(temporary, self.filename)
                write_file(local, stream, f"read {self.key}", self.record.size)
                return frames.read_frame(self.key, form, local, self.filename, kwargs)

    def _read(
        self, form: Optional[str], path: Path, options: dict[str, Any], name: str = ""
    ) -> Any:
        name = name or path.name
        form = frames.frame_format(self.key, form, None, name)
        return frames.read_frame(self.key, form, path, name, dict(options))


class Artifact(Entity):
    """A file (or any content) a run consumed or produced."""


class Model(Entity):
    """A trained model: its files, what made it, and its metrics."""

    @property
    def framework(self) -> Optional[str]:
        value = self.spec.get("framework")
        return None if value is None else str(value)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.record.metrics)

    def log_metric(
        self, key: str, value: Any, overwrite: bool = False, single_value: bool = False
    ) -> None:
        """DigitalHub's `model.log_metric`, kept in the store at once."""
        self._change_metrics(
            lambda kept: metrics.log_metric(kept, key, value, overwrite, single_value)
        )

    def log_metrics(self, values: dict[str, Any], overwrite: bool = False) -> None:
        self._change_metrics(lambda kept: metrics.log_metrics(kept, values, overwrite))

    def _change_metrics(self, change: Callable[[dict[str, Any]], None]) -> None:
        """`change` applied to the metrics the store keeps now (another handle may have logged
        some since this one was read), then kept, as DigitalHub updates one metric at a time."""
        record = self.record
        kept = self.store.version(record.project, record.entity_type, record.name, record.id)
        change(kept.metrics)
        self.store.update(kept)
        record.metrics = kept.metrics


CLASSES: dict[str, type[Entity]] = {"dataitem": DataItem, "artifact": Artifact, "model": Model}


def entity_object(record: EntityRecord, store: Store, run: Optional[Run] = None) -> Entity:
    """The object for one version, by its entity type (a function has none: the Python API
    reads functions)."""
    if record.entity_type not in CLASSES:
        kind = record.entity_type
        raise SpecError(f"{str(record.key)!r} is a {kind}: not an entity with content")
    return CLASSES[record.entity_type](record, store, run)


def _content_type(stream: Any) -> str:
    """An http response's media type (lower case, no parameters), else ''."""
    headers = getattr(stream, "headers", None)
    getter = getattr(headers, "get_content_type", None)
    return str(getter()).lower() if callable(getter) else ""


def _unpack(entity: Entity, tree: Path) -> None:
    """A folder entity's zip unpacked into the new folder `tree`."""
    import zipfile

    from wrapper.sources.archive import unpack_archive
    from wrapper.sources.settings import ArchiveLimits

    packed = tree.parent / "content.zip"
    with entity.open() as stream:
        write_file(packed, stream, f"download {entity.key}", entity.record.size)
    with zipfile.ZipFile(packed) as archive:
        members = archive.infolist()
    limits = ArchiveLimits(len(members) + 1, sum(m.file_size for m in members))
    tree.mkdir()
    unpack_archive(packed, tree, limits)


_PROCESS_FOLDER: list[Path] = []


def _process_folder() -> Path:
    """Outside a run: one temporary folder of this process (removed when it exits)."""
    if not _PROCESS_FOLDER:
        _PROCESS_FOLDER.append(scratch_folder("fn-wrapper-downloads-"))
    return _PROCESS_FOLDER[0]

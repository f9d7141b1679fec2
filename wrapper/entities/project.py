"""The reserved `project` and `run` arguments (also `context.project` / `context.run`):
entities got by key or by name and logged into the store, with the run's lineage
(DESIGN §5; the method names and arguments are DigitalHub's)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import numbers
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO, Optional, Union

from wrapper.entities.keys import check_names
from wrapper.entities.objects import Artifact, DataItem, Entity, Model, entity_object
from wrapper.entities.record import EntityRecord, new_id
from wrapper.entities.store import Store, content_filename
from wrapper.errors import SpecError

Source = Union[str, Path]


class Run:
    """The current run: its id and project, what it was asked to do, its lineage (the keys
    of the versions it consumed and produced, in order, each once), its metrics and its
    status so far."""

    def __init__(
        self,
        project: str,
        id: Optional[str] = None,
        function: str = "",
        action: str = "job",
        spec: Optional[dict[str, Any]] = None,
    ) -> None:
        self.project = project
        self.id = id or new_id()
        self.function = function
        self.action = action
        self.spec = dict(spec or {})
        self.consumed: list[str] = []
        self.produced: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.document: dict[str, Any] = {"id": self.id, "project": project, "state": "RUNNING"}
        """The status document (the job door's RunStatus keeps it current)."""

    @property
    def status(self) -> SimpleNamespace:
        """The status so far, a copy: `state`, `message`, `results`, `outputs`, `metrics`…"""
        import copy

        return SimpleNamespace(**copy.deepcopy({**self.document, **self.lineage()}))

    def consume(self, entity: Entity) -> None:
        if entity.key not in self.consumed:
            self.consumed.append(entity.key)

    def produce(self, entity: Entity) -> None:
        if entity.key not in self.produced:
            self.produced.append(entity.key)

    def log_metric(
        self, key: str, value: Any, overwrite: bool = False, single_value: bool = False
    ) -> None:
        """Record a metric (DigitalHub's call): each value is appended to the metric's list,
        or it is the metric's only value with `single_value`; `overwrite` starts afresh. The
        status document keeps `metrics` at its next write."""
        if not isinstance(key, str) or not key:
            raise SpecError(f"log_metric: the key must be a non-empty string, not {key!r}")
        for item in value if isinstance(value, list) else (value,):
            if not _is_metric_value(item):
                raise SpecError(
                    f"log_metric({key!r}): a {type(item).__name__} is not a metric value "
                    "(a number, a string, a bool, None or a list of them)"
                )
        if single_value:
            self.metrics[key] = value
        elif overwrite or not isinstance(self.metrics.get(key), list):
            self.metrics[key] = list(value) if isinstance(value, list) else [value]
        else:
            self.metrics[key].extend(value if isinstance(value, list) else [value])

    def log_metrics(self, metrics: dict[str, Any], overwrite: bool = False) -> None:
        """log_metric for each item."""
        for key, value in metrics.items():
            self.log_metric(key, value, overwrite)

    def lineage(self) -> dict[str, Any]:
        """What the run consumed and produced so far, and its metrics (copies)."""
        return {
            "consumed": list(self.consumed),
            "produced": list(self.produced),
            "metrics": {k: list(v) if isinstance(v, list) else v for k, v in self.metrics.items()},
        }

    def __repr__(self) -> str:
        return f"Run({self.id!r}, project={self.project!r})"


class Project:
    """A project's entities in a store; what a run gets and logs is added to its lineage."""

    def __init__(self, name: str, store: Store, run: Optional[Run] = None) -> None:
        check_names("project", project=name)
        self.name = name
        self.store = store
        self.run = run

    def get_dataitem(self, identifier: str, entity_id: Optional[str] = None) -> DataItem:
        """A dataitem by key, or by name (its latest version, or version `entity_id`)."""
        return self._get("dataitem", identifier, entity_id)  # type: ignore[return-value]

    def get_artifact(self, identifier: str, entity_id: Optional[str] = None) -> Artifact:
        return self._get("artifact", identifier, entity_id)  # type: ignore[return-value]

    def get_model(self, identifier: str, entity_id: Optional[str] = None) -> Model:
        return self._get("model", identifier, entity_id)  # type: ignore[return-value]

    def log_dataitem(
        self,
        name: str,
        kind: str = "table",
        source: Optional[Source] = None,
        data: Any = None,
        path: Optional[str] = None,
        labels: Optional[dict[str, str]] = None,
        **spec: Any,
    ) -> DataItem:
        """Log a dataitem from a local file (`source`), a DataFrame or bytes (`data`), or a
        remote `path` (http(s), s3) that stays where it is."""
        return self._log("dataitem", name, kind, source, data, path, labels, spec)  # type: ignore[return-value]

    def log_artifact(
        self,
        name: str,
        kind: str = "artifact",
        source: Optional[Source] = None,
        data: Any = None,
        path: Optional[str] = None,
        labels: Optional[dict[str, str]] = None,
        **spec: Any,
    ) -> Artifact:
        return self._log("artifact", name, kind, source, data, path, labels, spec)  # type: ignore[return-value]

    def log_model(
        self,
        name: str,
        kind: str = "model",
        source: Optional[Source] = None,
        data: Any = None,
        path: Optional[str] = None,
        framework: Optional[str] = None,
        labels: Optional[dict[str, str]] = None,
        **spec: Any,
    ) -> Model:
        if framework is not None:
            spec["framework"] = framework
        return self._log("model", name, kind, source, data, path, labels, spec)  # type: ignore[return-value]

    def _get(self, entity_type: str, identifier: str, entity_id: Optional[str]) -> Entity:
        field = f"get_{entity_type}({identifier!r})"
        if entity_id:
            record = self.store.version(self.name, entity_type, identifier, entity_id)
        else:
            record = self.store.find(identifier, self.name, entity_type, field)
        entity = entity_object(record, self.store)
        if self.run is not None:
            self.run.consume(entity)
        return entity

    def _log(
        self,
        entity_type: str,
        name: str,
        kind: str,
        source: Optional[Source],
        data: Any,
        path: Optional[str],
        labels: Optional[dict[str, str]],
        spec: dict[str, Any],
    ) -> Entity:
        field = f"log_{entity_type}({name!r})"
        given = [
            n for n, v in (("source", source), ("data", data), ("path", path)) if v is not None
        ]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise SpecError(f"{field}: give exactly one of source, data or path (got {got})")
        check_names(field, kind=kind, name=name)
        run = self.run.id if self.run is not None else None
        record = EntityRecord(self.name, entity_type, kind, name, labels=labels, spec=spec, run=run)
        if path is not None:
            record.spec["path"] = path
            self.store.put(record, None, name)
        else:
            if source is not None and Path(source).is_dir():
                record.spec["archive"] = "zip"  # a folder, kept as one zip: download() unpacks
            with _content(source, data, field) as (stream, filename):
                if filename.endswith((".csv", ".parquet")):
                    record.spec.setdefault("format", filename.rsplit(".", 1)[1])
                self.store.put(record, stream, content_filename(filename, name))
        entity = entity_object(record, self.store)
        if self.run is not None:
            self.run.produce(entity)
        return entity


@contextlib.contextmanager
def _content(source: Optional[Source], data: Any, field: str) -> Iterator[tuple[BinaryIO, str]]:
    """The stream and file name of what is logged: a local file, bytes, or a DataFrame
    (written to a temporary Parquet file when pyarrow is installed, else CSV)."""
    if source is not None and Path(source).is_dir():
        with tempfile.TemporaryDirectory(prefix="fn-wrapper-folder-") as folder:
            archive = Path(folder, f"{Path(source).name or 'folder'}.zip")
            _zip_folder(Path(source), archive)
            with _opened(archive, field) as stream:
                yield stream, archive.name
    elif source is not None:
        with _opened(Path(source), field) as stream:
            yield stream, Path(source).name
    elif isinstance(data, (bytes, bytearray, memoryview)):
        yield io.BytesIO(data), "data.bin"
    elif is_dataframe(data):
        with tempfile.TemporaryDirectory(prefix="fn-wrapper-frame-") as folder:
            path = write_frame(data, Path(folder))
            with _opened(path, field) as stream:
                yield stream, path.name
    else:
        raise SpecError(f"{field}: data must be bytes or a DataFrame, not {type(data).__name__}")


def _is_metric_value(value: Any) -> bool:
    """A number (NumPy's too), a string, a bool or None."""
    return value is None or isinstance(value, (str, numbers.Real))


def _zip_folder(folder: Path, archive: Path) -> None:
    """The files under `folder` (paths relative to it; links followed) into `archive`."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as packed:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                packed.write(path, path.relative_to(folder).as_posix())


def _opened(path: Path, field: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SpecError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None


def is_dataframe(value: Any) -> bool:
    """A pandas DataFrame, told without importing pandas."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def write_frame(frame: Any, folder: Path, name: str = "data") -> Path:
    """A DataFrame as a file in `folder`: Parquet when pyarrow is installed, else CSV."""
    if importlib.util.find_spec("pyarrow") is not None:
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
    else:
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
    return path

"""The reserved `project` argument (also `context.project`): a project's entities and runs in
a store, with DigitalHub 0.15's method names and arguments (its `project/_base/entity.py`).

`get_*` find a version by key or by name, `list_*` the latest versions, `new_*` register
content that stays where it is (nothing uploaded), `log_*` keep content in the store. What
a run gets is added to its lineage; what it logs, to its outputs (DESIGN §5).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import SplitResult, urlsplit

from wrapper.entities.content import Source, content_stream
from wrapper.entities.keys import check_names
from wrapper.entities.objects import Artifact, DataItem, Entity, Model, entity_object
from wrapper.entities.record import EntityRecord, Labels
from wrapper.entities.remote import local_path, shown
from wrapper.entities.run import Run
from wrapper.entities.store import Store, content_filename
from wrapper.errors import SpecError

if TYPE_CHECKING:
    from wrapper.api.functions import Function

log = logging.getLogger("wrapper.entities")

_LIST_FILTERS = ("name", "kind", "versions")
_RUN_FILTERS = ("state", "function", "action")


class Project:
    """A project's entities in a store; what a run gets and logs is added to its lineage."""

    def __init__(self, name: str, store: Store, run: Optional[Run] = None) -> None:
        check_names("project", project=name)
        self.name = name
        self.store = store
        self.run = run

    # Dataitems

    def get_dataitem(self, identifier: str, entity_id: Optional[str] = None) -> DataItem:
        """A dataitem by key, or by name (its latest version, or version `entity_id`)."""
        return self._get("dataitem", identifier, entity_id)  # type: ignore[return-value]

    def get_dataitem_versions(self, identifier: str) -> list[DataItem]:
        return self._versions("dataitem", identifier)  # type: ignore[return-value]

    def list_dataitems(self, **filters: Any) -> list[DataItem]:
        """The latest version of each dataitem (`versions="all"`: every version), by `name`
        and `kind` when given."""
        return self._list("dataitem", filters)  # type: ignore[return-value]

    def new_dataitem(self, name: str, kind: str, **fields: Any) -> DataItem:
        """Register a dataitem whose content stays at `path` (a local path, http(s)://,
        s3://): nothing is uploaded."""
        return self._new("dataitem", name, kind, **fields)  # type: ignore[return-value]

    def log_dataitem(
        self,
        name: str,
        kind: str = "table",
        source: Optional[Source] = None,
        data: Any = None,
        drop_existing: bool = False,
        description: Optional[str] = None,
        labels: Optional[Labels] = None,
        extension: Optional[str] = None,
        path: Optional[str] = None,
        **spec: Any,
    ) -> DataItem:
        """Keep a dataitem in the store: a local file or folder (`source`), or a DataFrame or
        bytes (`data`; a DataFrame as Parquet, or CSV with `extension="csv"`)."""
        return self._log(  # type: ignore[return-value]
            "dataitem", name, kind, source, data, path, labels, description, drop_existing,
            extension, spec,
        )  # fmt: skip

    def log_table(
        self,
        name: str,
        source: Optional[Source] = None,
        data: Any = None,
        sql: Optional[str] = None,
        drop_existing: bool = False,
        path: Optional[str] = None,
        description: Optional[str] = None,
        labels: Optional[Labels] = None,
        file_format: Optional[str] = None,
        read_df_params: Optional[dict[str, Any]] = None,
        engine: Optional[str] = None,
        **spec: Any,
    ) -> DataItem:
        """log_dataitem of kind `table` (a table read from SQL is not supported here)."""
        if sql is not None:
            raise SpecError(f"log_table({name!r}): sql= is not supported: log a file or a frame")
        if file_format:
            spec["format"] = file_format
        return self.log_dataitem(
            name, "table", source, data, drop_existing, description, labels, None, path, **spec
        )

    def log_generic_dataitem(
        self, name: str, source: Optional[Source] = None, **kw: Any
    ) -> DataItem:
        return self.log_dataitem(name, "dataitem", source, **kw)

    def log_croissant(self, name: str, source: Optional[Source] = None, **kw: Any) -> DataItem:
        return self.log_dataitem(name, "croissant", source, **kw)

    # Artifacts

    def get_artifact(self, identifier: str, entity_id: Optional[str] = None) -> Artifact:
        return self._get("artifact", identifier, entity_id)  # type: ignore[return-value]

    def get_artifact_versions(self, identifier: str) -> list[Artifact]:
        return self._versions("artifact", identifier)  # type: ignore[return-value]

    def list_artifacts(self, **filters: Any) -> list[Artifact]:
        return self._list("artifact", filters)  # type: ignore[return-value]

    def new_artifact(self, name: str, kind: str = "artifact", **fields: Any) -> Artifact:
        return self._new("artifact", name, kind, **fields)  # type: ignore[return-value]

    def log_artifact(
        self,
        name: str,
        kind: str = "artifact",
        source: Optional[Source] = None,
        drop_existing: bool = False,
        path: Optional[str] = None,
        description: Optional[str] = None,
        labels: Optional[Labels] = None,
        data: Any = None,
        **spec: Any,
    ) -> Artifact:
        """Keep an artifact in the store: a local file or folder (`source`) or bytes (`data`)."""
        return self._log(  # type: ignore[return-value]
            "artifact", name, kind, source, data, path, labels, description, drop_existing,
            None, spec,
        )  # fmt: skip

    def log_generic_artifact(
        self, name: str, source: Optional[Source] = None, **kw: Any
    ) -> Artifact:
        return self.log_artifact(name, "artifact", source, **kw)

    # Models

    def get_model(self, identifier: str, entity_id: Optional[str] = None) -> Model:
        return self._get("model", identifier, entity_id)  # type: ignore[return-value]

    def get_model_versions(self, identifier: str) -> list[Model]:
        return self._versions("model", identifier)  # type: ignore[return-value]

    def list_models(self, **filters: Any) -> list[Model]:
        return self._list("model", filters)  # type: ignore[return-value]

    def new_model(self, name: str, kind: str = "model", **fields: Any) -> Model:
        return self._new("model", name, kind, **fields)  # type: ignore[return-value]

    def log_model(
        self,
        name: str,
        kind: str = "model",
        source: Optional[Source] = None,
        drop_existing: bool = False,
        path: Optional[str] = None,
        description: Optional[str] = None,
        labels: Optional[Labels] = None,
        data: Any = None,
        **spec: Any,
    ) -> Model:
        """Keep a model in the store: its file or folder (`source`) or bytes (`data`);
        `spec` holds its fields (`framework`, `algorithm`, `parameters`, …)."""
        return self._log(  # type: ignore[return-value]
            "model", name, kind, source, data, path, labels, description, drop_existing,
            None, spec,
        )  # fmt: skip

    def log_generic_model(self, name: str, source: Optional[Source] = None, **kw: Any) -> Model:
        return self.log_model(name, "model", source, **kw)

    def log_sklearn(self, name: str, source: Optional[Source] = None, **kw: Any) -> Model:
        return self.log_model(name, "sklearn", source, **kw)

    def log_mlflow(self, name: str, source: Optional[Source] = None, **kw: Any) -> Model:
        return self.log_model(name, "mlflow", source, **kw)

    def log_huggingface(self, name: str, source: Optional[Source] = None, **kw: Any) -> Model:
        return self.log_model(name, "huggingface", source, **kw)

    # Functions (the Python API's, DESIGN §11)

    def new_function(self, name: str, kind: str = "python", **fields: Any) -> Function:
        """Keep a new version of function `name`: the function fields of a run spec,
        validated as the spec models do."""
        from wrapper.api.functions import new_function

        return new_function(self, name, kind, **fields)

    def get_function(self, identifier: str, entity_id: Optional[str] = None) -> Function:
        """A function by key, or by name (its latest version, or version `entity_id`)."""
        from wrapper.api.functions import Function

        field = f"get_function({identifier!r})"
        record = self.store.find(identifier, self.name, "function", field)
        if entity_id:
            record = self.store.version(record.project, "function", record.name, entity_id)
        return Function(record, self)

    def get_function_versions(self, identifier: str) -> list[Function]:
        from wrapper.api.functions import Function

        field = f"get_function_versions({identifier!r})"
        found = self.store.find(identifier, self.name, "function", field)
        return [Function(r, self) for r in self.store.versions(self.name, "function", found.name)]

    def list_functions(self, **filters: Any) -> list[Function]:
        """The latest version of each function (`name`, `kind`, `versions="all"` filter)."""
        from wrapper.api.functions import Function

        wanted = _filters("list_functions", filters, _LIST_FILTERS)
        every = wanted.pop("versions", None) == "all"
        seen: set[str] = set()
        found = []
        for record in self.store.versions(self.name, "function", wanted.get("name")):
            if wanted.get("kind") not in (None, record.kind) or (record.name in seen and not every):
                continue
            seen.add(record.name)
            found.append(Function(record, self))
        return found

    # Runs

    def get_run(self, identifier: str) -> Run:
        """A run of this project by id (or by DigitalHub's run key, ending in the id), as
        its status document says it is now."""
        run_id = identifier.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        return Run.from_document(self.store.get_run(self.name, run_id), self.store)

    def list_runs(self, **filters: Any) -> list[Run]:
        """The project's runs, newest first, by `state`, `function` and `action` when given."""
        wanted = _filters("list_runs", filters, _RUN_FILTERS)
        return [
            Run.from_document(document, self.store)
            for document in self.store.runs(self.name)
            if all(document.get(field) == value for field, value in wanted.items())
        ]

    # The work behind them

    def _get(self, entity_type: str, identifier: str, entity_id: Optional[str]) -> Entity:
        field = f"get_{entity_type}({identifier!r})"
        if entity_id:  # version `entity_id` of the entity a name or a key names
            found = self.store.find(identifier, self.name, entity_type, field)
            record = self.store.version(found.project, entity_type, found.name, entity_id)
        else:
            record = self.store.find(identifier, self.name, entity_type, field)
        entity = entity_object(record, self.store, self.run)
        if self.run is not None:
            self.run.consume(entity)
        return entity

    def _versions(self, entity_type: str, identifier: str) -> list[Entity]:
        field = f"get_{entity_type}_versions({identifier!r})"
        found = self.store.find(identifier, self.name, entity_type, field)
        records = self.store.versions(found.project, entity_type, found.name)
        return [entity_object(record, self.store, self.run) for record in records]

    def _list(self, entity_type: str, filters: dict[str, Any]) -> list[Entity]:
        wanted = _filters(f"list_{entity_type}s", filters, _LIST_FILTERS)
        every = wanted.pop("versions", None) == "all"
        seen: set[str] = set()
        found = []
        for record in self.store.versions(self.name, entity_type, wanted.get("name")):
            if wanted.get("kind") not in (None, record.kind) or (record.name in seen and not every):
                continue
            seen.add(record.name)
            found.append(entity_object(record, self.store, self.run))
        return found

    def _new(
        self,
        entity_type: str,
        name: str,
        kind: str,
        uuid: Optional[str] = None,
        description: Optional[str] = None,
        labels: Optional[Labels] = None,
        embedded: bool = False,
        path: Optional[str] = None,
        extensions: Optional[list[dict[str, Any]]] = None,
        **spec: Any,
    ) -> Entity:
        field = f"new_{entity_type}({name!r})"
        check_names(field, kind=kind, name=name)
        if uuid is not None:
            check_names(field, uuid=uuid)
        spec["path"] = _registered_path(path, field)
        record = EntityRecord(
            self.name, entity_type, kind, name, id=uuid, labels=labels,
            description=description, spec=spec, run=self.run.id if self.run else None,
        )  # fmt: skip
        self.store.put(record, None, name)
        entity = entity_object(record, self.store, self.run)
        if self.run is not None:
            self.run.produce(entity)
        return entity

    def _log(
        self,
        entity_type: str,
        name: str,
        kind: str,
        source: Optional[Source],
        data: Any,
        path: Optional[str],
        labels: Optional[Labels],
        description: Optional[str],
        drop_existing: bool,
        extension: Optional[str],
        spec: dict[str, Any],
    ) -> Entity:
        field = f"log_{entity_type}({name!r})"
        check_names(field, kind=kind, name=name)
        if source is None and data is None:
            if path is None:
                raise SpecError(f"{field}: give source (a local file or folder) or data")
            return self._new(
                entity_type, name, kind, path=path, labels=labels, description=description, **spec
            )
        if source is not None and data is not None:
            raise SpecError(f"{field}: give source or data, not both")
        if path is not None:
            log.warning(
                "%s: path=%r (DigitalHub's upload destination) is not used: the content is "
                "kept in the store %s",
                field, shown(path), self.store.uri,
            )  # fmt: skip
        run = self.run.id if self.run is not None else None
        record = EntityRecord(
            self.name, entity_type, kind, name, labels=labels, description=description,
            spec=spec, run=run,
        )  # fmt: skip
        if source is not None and Path(source).is_dir():
            record.spec["archive"] = "zip"  # a folder, kept as one zip: download() unpacks
        with content_stream(source, data, name, field, extension) as (stream, filename):
            if filename.endswith((".csv", ".parquet")):
                record.spec.setdefault("format", filename.rsplit(".", 1)[1])
            self.store.put(record, stream, content_filename(filename, name))
        entity = entity_object(record, self.store, self.run)
        if drop_existing:  # DigitalHub drops every other version, once the new one is kept
            for older in self.store.versions(self.name, entity_type, name):
                if older.id != record.id:
                    self.store.remove(older)
        if self.run is not None:
            self.run.log(entity)
        return entity


def _registered_path(path: Optional[str], field: str) -> str:
    """A path content may be registered at: http(s)://, s3://bucket/key, or a local file or
    folder that exists (kept absolute)."""
    if not path:
        raise SpecError(
            f"{field}: path= is required: where the content is (a local path, http(s)://, s3://)"
        )
    parts = urlsplit(path)
    if parts.scheme in ("http", "https", "s3"):
        _without_credentials(parts, field)
        return path
    local = local_path(path)
    if local is None:
        raise SpecError(
            f"{field}: path {shown(path)!r}: expected a local path, http(s):// or s3://"
        )
    if not local.exists():
        raise SpecError(f"{field}: path {str(local)!r} does not exist")
    return str(local.absolute())


def _without_credentials(parts: SplitResult, field: str) -> None:
    """Refuse a URL that carries credentials (they belong in the environment: a path is kept
    in the store and shown in statuses), without echoing them."""
    try:
        _ = parts.port
    except ValueError:  # `user:pa/ss@host`: what follows the first `:` is no port
        raise SpecError(
            f"{field}: path {parts.scheme}://***: not a URL this reads (the text after the "
            "host's ':' is no port; a password in the URL?): give credentials in the environment"
        ) from None
    if "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        raise SpecError(
            f"{field}: path {parts.scheme}://***@{host}{parts.path}: credentials in a URL are "
            "refused: give them in the environment (AWS_* for s3://, a proxy or a signed URL "
            "for http)"
        )


def _filters(call: str, given: dict[str, Any], supported: tuple[str, ...]) -> dict[str, Any]:
    """The filters given (None values dropped); one this store cannot apply is a SpecError."""
    wanted = {key: value for key, value in given.items() if value is not None}
    other = sorted(set(wanted) - set(supported))
    if other:
        raise SpecError(
            f"{call}({other[0]}=…): not supported by fn-wrapper's stores "
            f"(filters: {', '.join(supported)})"
        )
    return wanted

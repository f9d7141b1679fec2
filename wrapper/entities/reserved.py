"""The reserved `project` and `run` every door gives its function (DESIGN §5), made on first
use on a store opened on first use: a function that never touches entities costs nothing and
creates no store."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

from wrapper.entities.record import EntityRecord
from wrapper.entities.store import Store, default_store_uri, store_opener
from wrapper.settings import Settings, project_of


class LazyStore(Store):
    """The store a `--store` value names, checked now and opened when first used."""

    def __init__(self, uri: Optional[str] = None) -> None:
        self.uri = uri or default_store_uri()
        self._open: Callable[[], Store] = store_opener(self.uri)
        self._store: Optional[Store] = None

    @property
    def opened(self) -> Store:
        if self._store is None:
            self._store = self._open()
        return self._store

    def put(self, record: EntityRecord, content: Optional[BinaryIO], filename: str) -> EntityRecord:
        return self.opened.put(record, content, filename)

    def versions(
        self,
        project: Optional[str] = None,
        entity_type: Optional[str] = None,
        name: Optional[str] = None,
    ) -> list[EntityRecord]:
        return self.opened.versions(project, entity_type, name)

    def version(self, project: str, entity_type: str, name: str, id: str) -> EntityRecord:
        return self.opened.version(project, entity_type, name, id)

    def open(self, record: EntityRecord) -> BinaryIO:
        return self.opened.open(record)

    def remove(self, record: EntityRecord) -> None:
        self.opened.remove(record)

    def update(self, record: EntityRecord) -> None:
        self.opened.update(record)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def local_file(self, record: EntityRecord) -> Optional[Path]:
        return self.opened.local_file(record)

    def put_run(self, document: dict[str, Any]) -> None:
        self.opened.put_run(document)

    def get_run(self, project: str, run_id: str) -> dict[str, Any]:
        return self.opened.get_run(project, run_id)

    def remove_run(self, project: str, run_id: str) -> None:
        self.opened.remove_run(project, run_id)

    def runs(self, project: Optional[str] = None) -> list[dict[str, Any]]:
        return self.opened.runs(project)


class DoorEntities(Mapping[str, Any]):
    """`project` and `run` as a door's reserved values (and `context.project`/`context.run`):
    the entity layer is imported and they are made when first asked for."""

    def __init__(
        self,
        store: Optional[str],
        project: str,
        function: str,
        action: str,
        run_id: Optional[str] = None,
    ) -> None:
        from wrapper.entities.keys import check_names

        check_names("--project", project=project)
        self.store = LazyStore(store)
        self._arguments = (project, function, action, run_id)
        self._made: Optional[dict[str, Any]] = None

    def __getitem__(self, name: str) -> Any:
        if name not in ("project", "run"):
            raise KeyError(name)
        if self._made is None:
            from wrapper.entities.project import Project
            from wrapper.entities.run import Run

            project, function, action, run_id = self._arguments
            run = Run(project, run_id, function, action, store=self.store)
            self._made = {"project": Project(project, self.store, run), "run": run}
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return name in ("project", "run")

    def __iter__(self) -> Iterator[str]:
        return iter(("project", "run"))

    def __len__(self) -> int:
        return 2

    def close(self) -> None:
        self.store.close()


def door_entities(
    settings: Settings, function: str, action: str, from_spec: Optional[str] = None
) -> DoorEntities:
    """The reserved `project` and `run` of a door answering events, on the `--store` store
    (opened on first use); the run's id is `$RUN_ID` when the platform sets it."""
    project = project_of(settings, from_spec)
    return DoorEntities(settings.store, project, function, action, os.environ.get("RUN_ID"))

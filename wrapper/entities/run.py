"""The reserved `run` argument (also `context.run`) and the runs `project.get_run` reads back:
the run's id, lineage, metrics and status, with DigitalHub's method names (DESIGN §5)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional

from wrapper.entities import metrics
from wrapper.entities.keys import EntityKey
from wrapper.entities.record import new_id
from wrapper.entities.scratch import scratch_folder

if TYPE_CHECKING:
    from wrapper.entities.objects import Entity
    from wrapper.entities.store import Store


class Run:
    """A run: the current one, whose door keeps its status document current, or one read back
    from a store. It knows the keys of the versions it consumed and produced (in order, each
    once), the entities the handler logged by name, and its metrics."""

    def __init__(
        self,
        project: str,
        id: Optional[str] = None,
        function: str = "",
        action: str = "job",
        spec: Optional[dict[str, Any]] = None,
        store: Optional[Store] = None,
    ) -> None:
        self.project = project
        self.id = id or new_id()
        self.function = function
        self.action = action
        self.spec = dict(spec or {})
        self.store = store
        self.consumed: list[str] = []
        self.produced: list[str] = []
        self.logged: dict[str, str] = {}
        """Name → key of the entities the handler logged (DigitalHub merges them into the
        run's outputs, and keeps them when the run fails)."""
        self.metrics: dict[str, Any] = {}
        self.document: dict[str, Any] = {"id": self.id, "project": project, "state": "RUNNING"}
        """The status document (the job door's RunStatus keeps it current)."""
        self._folder: Optional[Path] = None

    @classmethod
    def from_document(cls, document: dict[str, Any], store: Store) -> Run:
        """A run read back from its status document."""
        run = cls(
            str(document["project"]),
            str(document["id"]),
            str(document.get("function") or ""),
            str(document.get("action") or "job"),
            store=store,
        )
        run._load(document)
        return run

    @property
    def status(self) -> SimpleNamespace:
        """The status so far, a copy: `state`, `message`, `results`, `outputs`, `metrics`…"""
        return SimpleNamespace(**copy.deepcopy({**self.document, **self.lineage()}))

    @property
    def folder(self) -> Path:
        """The run's own folder (downloads with no destination go under it), made on first use
        and removed when the process exits: two runs, or two workers, never share one."""
        if self._folder is None:
            self._folder = scratch_folder(f"fn-wrapper-run-{self.id}-")
        return self._folder

    def consume(self, entity: Entity) -> None:
        if entity.key not in self.consumed:
            self.consumed.append(entity.key)

    def produce(self, entity: Entity) -> None:
        if entity.key not in self.produced:
            self.produced.append(entity.key)

    def log(self, entity: Entity) -> None:
        """An entity the handler logged: produced, and an output under its name."""
        self.produce(entity)
        self.logged[entity.name] = entity.key

    def forget(self, entity: Entity) -> None:
        """A produced version that was removed again (an output of a run that failed)."""
        if entity.key in self.produced:
            self.produced.remove(entity.key)
        if self.logged.get(entity.name) == entity.key:
            del self.logged[entity.name]

    def log_metric(
        self, key: str, value: Any, overwrite: bool = False, single_value: bool = False
    ) -> None:
        """DigitalHub's `run.log_metric` (see wrapper.entities.metrics); the status document
        keeps `metrics` at its next write."""
        metrics.log_metric(self.metrics, key, value, overwrite, single_value)

    def log_metrics(self, values: dict[str, Any], overwrite: bool = False) -> None:
        metrics.log_metrics(self.metrics, values, overwrite)

    def lineage(self) -> dict[str, Any]:
        """What the run consumed and produced so far, and its metrics (copies)."""
        return {
            "consumed": list(self.consumed),
            "produced": list(self.produced),
            "metrics": copy.deepcopy(self.metrics),
        }

    def refresh(self) -> Run:
        """Read the status document again from the store (a run read back)."""
        if self.store is not None:
            self._load(self.store.get_run(self.project, self.id))
        return self

    def results(self) -> dict[str, Any]:
        """The run's results (plain values by name)."""
        return dict(self.document.get("results") or {})

    def result(self, name: str) -> Any:
        return self.results().get(name)

    def outputs(self, as_key: bool = False, as_dict: bool = False) -> dict[str, Any]:
        """The run's outputs by name: entity objects, or their keys, or their documents."""
        return self._entities(self.document.get("outputs") or {}, as_key, as_dict)

    def output(self, name: str, as_key: bool = False, as_dict: bool = False) -> Any:
        return self.outputs(as_key, as_dict).get(name)

    def inputs(self, as_dict: bool = False) -> dict[str, Any]:
        """The run's inputs by argument name, as entity objects (or their documents)."""
        return self._entities(self.document.get("inputs") or {}, False, as_dict)

    def _entities(self, keys: dict[str, str], as_key: bool, as_dict: bool) -> dict[str, Any]:
        if as_key:
            return dict(keys)
        found = {name: self._entity(key) for name, key in keys.items()}
        return {n: e.record.to_dict() for n, e in found.items()} if as_dict else found

    def _entity(self, key: str) -> Entity:
        from wrapper.entities.objects import entity_object
        from wrapper.entities.store import StoreError

        if self.store is None:
            raise StoreError(f"run {self.id}: no store to read {key!r} from")
        parsed = EntityKey.parse(key, f"run {self.id}")
        record = self.store.find(parsed, self.project, parsed.entity_type, f"run {self.id}")
        return entity_object(record, self.store)

    def _load(self, document: dict[str, Any]) -> None:
        self.document = dict(document)
        self.spec = dict(document.get("spec") or self.spec)
        self.metrics = dict(document.get("metrics") or {})
        self.consumed = list(document.get("consumed") or [])
        self.produced = list(document.get("produced") or [])

    def __repr__(self) -> str:
        return f"Run({self.id!r}, project={self.project!r})"

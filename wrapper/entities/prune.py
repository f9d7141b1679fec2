"""Pruning a store: entity versions (or run documents) older than an age or beyond the newest
N, never a version that a kept run's lineage names unless forced (DESIGN §5).

A run's lineage is every key its status document names in `consumed`, `produced`, `inputs`
and `outputs`; a key without an id names the entity's latest version as it is now. Both rules
keep: with `older_than` and `keep` together, a version goes only when it is beyond the newest
`keep` of its entity *and* older than `older_than`. Runs are grouped by function; a RUNNING
run is kept unless forced (a killed job's document stays RUNNING: remove it with force).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar

from wrapper.entities.keys import EntityKey
from wrapper.entities.record import EntityRecord
from wrapper.entities.store import EntityNotFound, Store
from wrapper.errors import SpecError

LINEAGE_FIELDS = ("consumed", "produced", "inputs", "outputs")
"""The fields of a run document whose keys are its lineage."""

Version = tuple[str, str, str, str]
"""(project, entity_type, name, id): one version, whatever kind a key gave it."""

Item = TypeVar("Item")


@dataclass(frozen=True)
class Rules:
    """What goes: older than `older_than` seconds, and (or) beyond the newest `keep` of its
    group; ages are counted back from `now` (seconds since the epoch)."""

    older_than: Optional[float] = None
    keep: Optional[int] = None
    now: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.older_than is None and self.keep is None:
            raise SpecError("prune: say what goes: an age (older_than), a count (keep), or both")


@dataclass
class Pruning:
    """What a prune removes (or, dry, would remove) and what it keeps because of lineage or
    because a run is still RUNNING."""

    versions: list[EntityRecord] = field(default_factory=list)
    needed: list[tuple[EntityRecord, list[str]]] = field(default_factory=list)
    """Versions the rules would remove, kept for the runs (ids) whose lineage names them."""
    runs: list[dict[str, Any]] = field(default_factory=list)
    running: list[dict[str, Any]] = field(default_factory=list)
    """RUNNING runs the rules would remove, kept."""


def references(document: dict[str, Any]) -> Iterator[EntityKey]:
    """The keys a run document's lineage names (a malformed one is skipped: it names no
    version)."""
    for name in LINEAGE_FIELDS:
        value = document.get(name)
        texts = list(value.values()) if isinstance(value, dict) else value
        if not isinstance(texts, list):
            continue
        for text in texts:
            if isinstance(text, str):
                try:
                    yield EntityKey.parse(text)
                except SpecError:
                    continue


def lineage_needs(store: Store, runs: Iterable[dict[str, Any]]) -> dict[Version, list[str]]:
    """Each version the runs' lineage names → the ids of those runs, sorted, each once."""
    needs: dict[Version, list[str]] = {}
    latest: dict[tuple[str, str, str], Optional[str]] = {}
    for document in runs:
        run_id = str(document.get("id"))
        for key in references(document):
            version_id = key.id
            if version_id is None:
                entity = (key.project, key.entity_type, key.name)
                if entity not in latest:
                    try:
                        latest[entity] = store.latest(*entity).id
                    except EntityNotFound:
                        latest[entity] = None
                version_id = latest[entity]
            if version_id is None:
                continue
            needers = needs.setdefault((key.project, key.entity_type, key.name, version_id), [])
            if run_id not in needers:
                needers.append(run_id)
    return {version: sorted(needers) for version, needers in needs.items()}


def needed_by(store: Store, record: EntityRecord) -> list[str]:
    """The ids of the runs (of any project) whose lineage names `record`."""
    return lineage_needs(store, store.runs()).get(_version(record), [])


def plan_versions(
    store: Store,
    project: str,
    rules: Rules,
    entity_type: Optional[str] = None,
    name: Optional[str] = None,
    force: bool = False,
) -> Pruning:
    """The versions of `project` (of one type, one name) the rules remove, grouped by entity,
    less those the lineage of a run (of any project) needs, unless `force`."""
    found = store.versions(project, entity_type, name)  # newest first
    expired = _expired(found, _entity, _created, rules)
    needs = {} if force or not expired else lineage_needs(store, store.runs())
    pruning = Pruning()
    for record in expired:
        needers = needs.get(_version(record))
        if needers:
            pruning.needed.append((record, needers))
        else:
            pruning.versions.append(record)
    return pruning


def plan_runs(
    store: Store,
    project: str,
    rules: Rules,
    function: Optional[str] = None,
    state: Optional[str] = None,
    force: bool = False,
) -> Pruning:
    """The run documents of `project` (of one function, in one state) the rules remove,
    grouped by function and aged by when they finished (else started); a RUNNING run is kept
    unless `force`, and a run whose time is unknown is never old."""
    found = [
        document
        for document in store.runs(project)  # newest first
        if function in (None, document.get("function")) and state in (None, document.get("state"))
    ]
    pruning = Pruning()
    for document in _expired(found, _function, _finished, rules):
        if document.get("state") == "RUNNING" and not force:
            pruning.running.append(document)
        else:
            pruning.runs.append(document)
    return pruning


def apply(store: Store, pruning: Pruning) -> None:
    """Remove what `pruning` lists: versions first, then runs (what is gone meanwhile is
    skipped)."""
    for record in pruning.versions:
        try:
            store.remove(record)
        except EntityNotFound:
            continue
    for document in pruning.runs:
        try:
            store.remove_run(str(document.get("project")), str(document.get("id")))
        except EntityNotFound:
            continue


def _expired(
    items: list[Item],
    group: Callable[[Item], Any],
    moment: Callable[[Item], Optional[float]],
    rules: Rules,
) -> list[Item]:
    """The items (newest first in each group) beyond the newest `keep` of their group and
    older than `older_than`, as far as each rule is given."""
    seen: dict[Any, int] = {}
    expired = []
    for item in items:
        place = seen[group(item)] = seen.get(group(item), -1) + 1
        if rules.keep is not None and place < rules.keep:
            continue
        if rules.older_than is not None:
            when = moment(item)
            if when is None or rules.now - when <= rules.older_than:
                continue
        expired.append(item)
    return expired


def _entity(record: EntityRecord) -> tuple[str, str]:
    return (record.entity_type, record.name)


def _created(record: EntityRecord) -> float:
    return record.created_ns / 1e9


def _function(document: dict[str, Any]) -> Any:
    return document.get("function")


def _finished(document: dict[str, Any]) -> Optional[float]:
    """When a run finished (else started), in seconds since the epoch; None when unknown."""
    for name in ("finished", "started"):
        text = document.get(name)
        if isinstance(text, str):
            try:
                moment = datetime.datetime.fromisoformat(text)
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            return moment.timestamp()
    return None


def _version(record: EntityRecord) -> Version:
    return (record.project, record.entity_type, record.name, record.id)

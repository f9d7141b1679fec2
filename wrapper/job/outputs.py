"""A job's return value → results and outputs, as DigitalHub 0.15's python runtime maps it
(its `utils/outputs.py`), and the `@handler(outputs=[...])` declaration (DESIGN §5).

Every returned value is checked and converted (DataFrames written, objects pickled) before
any is kept, and the versions kept are removed again when a later one fails: a run's
returned outputs are all or nothing.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, TypeVar, Union

from wrapper.entities.frames import is_dataframe, write_frame
from wrapper.entities.keys import name_fault
from wrapper.entities.objects import Entity
from wrapper.entities.project import Project
from wrapper.entities.run import Run
from wrapper.entities.store import Store
from wrapper.errors import ExitCode, SpecError, WrapperError

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("wrapper.job")

OUTPUTS_ATTRIBUTE = "__fn_wrapper_outputs__"
RESULT_TYPES = (str, int, float, bool, bytes)
"""Values kept as results, as they are (DigitalHub's list; bytes are written as their str())."""
DECLARED_KINDS = {
    "dataitem": "dataitem",
    "table": "dataitem",
    "croissant": "dataitem",
    "mlflow": "model",
    "sklearn": "model",
    "model": "model",
    "artifact": "artifact",
}
"""The kinds a typed declaration may give (DigitalHub's), and the entity type of each."""


class OutputError(WrapperError):
    """A return value that cannot be kept as a result or an output (the run is an error)."""

    exit_code = ExitCode.HANDLER_FAILED


class Declared(NamedTuple):
    """One declared output: its name (None: `output_<index>`), and for a typed declaration
    the kind it is logged as and the fields (`spec_kwargs`) it is logged with."""

    name: Optional[str]
    kind: Optional[str] = None
    spec: dict[str, Any] = {}


def handler(outputs: Union[list[Any], Callable[..., Any], None] = None) -> Any:
    """Declare a job handler's outputs in the order it returns them: names, or DigitalHub's
    typed declarations `{"name": …, "kind": …, "spec_kwargs": {…}}`. `@handler` alone
    declares none.

    The function itself is returned unchanged (it still runs as written elsewhere)."""
    if callable(outputs):  # @handler without parentheses
        setattr(outputs, OUTPUTS_ATTRIBUTE, [])
        return outputs

    def declare(func: F) -> F:
        setattr(func, OUTPUTS_ATTRIBUTE, outputs)
        return func

    return declare


def declared_outputs(func: Any) -> list[Declared]:
    """The outputs `func` declares, checked before it runs: names of the key grammar, each
    once; typed ones with one of DigitalHub's kinds (SpecError otherwise)."""
    items = getattr(func, OUTPUTS_ATTRIBUTE, None) or []
    where = "@handler(outputs=...)"
    if isinstance(items, (str, dict)) or not isinstance(items, (list, tuple)):
        raise SpecError(f"{where}: expected a list of names, got {items!r}")
    declared = [_declared(item, index, where) for index, item in enumerate(items)]
    names = [d.name for d in declared if d.name]
    for name in names:
        if names.count(name) > 1:
            raise SpecError(f"{where}: output {name!r} is declared twice")
    return declared


def _declared(item: Any, index: int, where: str) -> Declared:
    if isinstance(item, str):
        fault = name_fault(name=item)
        if fault:
            raise SpecError(f"{where}: output {index}: {fault}")
        return Declared(item)
    if not isinstance(item, dict):
        raise SpecError(f"{where}: output {index}: a name or a mapping, not {item!r}")
    name, kind, spec = item.get("name") or None, item.get("kind"), item.get("spec_kwargs") or {}
    fault = name_fault(name=name) if name is not None else None
    if fault:
        raise SpecError(f"{where}: output {index}: {fault}")
    if kind not in DECLARED_KINDS:
        raise SpecError(
            f"{where}: output {name or index}: kind {kind!r} is not one of "
            f"{', '.join(DECLARED_KINDS)}"
        )
    if not isinstance(spec, dict):
        raise SpecError(f"{where}: output {name or index}: spec_kwargs must be a mapping")
    return Declared(name, kind, dict(spec))


Keep = Callable[[Project], Entity]
"""Keeps one output (a _Link only links an entity that exists already)."""


def collect(
    value: Any, declared: list[Declared], project: Project, created: list[Entity]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The results (plain values by name) and outputs (entity keys by name) of a return
    value, or of each item of a returned tuple or list: names as declared, then
    `output_<n>` (declared names beyond the values returned are not used). The versions it
    makes are appended to `created`; when one cannot be kept, those are removed again."""
    values = [] if value is None else list(value) if isinstance(value, (tuple, list)) else [value]
    if declared and len(declared) != len(values):
        log.warning(
            "the handler declares %d output(s) and returned %d value(s): %s",
            len(declared), len(values),
            "the extra names are not used" if len(declared) > len(values) else
            "the rest are named output_<n>",
        )  # fmt: skip
    results: dict[str, Any] = {}
    pending: list[tuple[str, Keep]] = []
    with tempfile.TemporaryDirectory(prefix="fn-wrapper-outputs-") as folder:
        for index, item in enumerate(values):
            wanted = declared[index] if index < len(declared) else Declared(None)
            name = wanted.name or f"output_{index}"
            keep = _converted(item, name, wanted, Path(folder))
            if keep is None:
                results[name] = item
            else:
                pending.append((name, keep))
        outputs: dict[str, str] = {}
        try:
            for name, keep in pending:
                outputs[name] = _kept(keep, name, project, created).key
        except BaseException:
            discard(created, project.store, project.run)
            raise
    return results, outputs


def discard(created: list[Entity], store: Store, run: Optional[Run]) -> None:
    """Remove the versions a run's return value made (its run failed after all)."""
    while created:
        entity = created.pop()
        try:
            store.remove(entity.record)
        except WrapperError as exc:
            log.error("output %s could not be removed again: %s", entity.key, exc.message)
        if run is not None:
            run.forget(entity)


def _kept(keep: Keep, name: str, project: Project, created: list[Entity]) -> Entity:
    """`keep` run, the version it makes added to `created`; its failures one OutputError."""
    try:
        entity = keep(project)
    except WrapperError as exc:
        raise OutputError(f"output {name!r}: {exc.message}") from None
    except Exception as exc:
        reason = _reason(exc)
        raise OutputError(f"output {name!r} cannot be kept: {reason}") from None
    if not isinstance(keep, _Link):
        created.append(entity)
    return entity


def _converted(item: Any, name: str, wanted: Declared, folder: Path) -> Optional[Keep]:
    """How an item is kept (None: as a result), its content written under `folder` now, so
    that a value that cannot be kept fails before any is."""
    try:
        if wanted.kind is not None:
            return _typed(item, name, wanted, folder)
        return _plain(item, name, folder)
    except OutputError:
        raise
    except Exception as exc:
        reason = _reason(exc)
        what = type(item).__name__
        raise OutputError(f"output {name!r}: a {what} cannot be kept: {reason}") from None


def _plain(item: Any, name: str, folder: Path) -> Optional[Keep]:
    """DigitalHub's rules: results as they are; an entity linked; a DataFrame a table; a
    `pathlib.Path` (fn-wrapper's own rule) an artifact of the file or folder; anything else
    pickled into an artifact `<name>.pickle`."""
    if isinstance(item, RESULT_TYPES):
        return None
    if isinstance(item, Entity):
        return _Link(item)
    if is_dataframe(item):
        table = write_frame(item, folder, name)
        return lambda project: project.log_dataitem(name, "table", source=table)
    if isinstance(item, Path):
        source = _existing(item, name)
        return lambda project: project.log_artifact(name, "artifact", source=source)
    pickled = _pickled(item, name, folder)
    return lambda project: project.log_artifact(name, "artifact", source=pickled)


def _typed(item: Any, name: str, wanted: Declared, folder: Path) -> Keep:
    """A typed declaration: the item logged as that kind, as DigitalHub's `log_<kind>` does
    with the item as its source (a local file or folder); fn-wrapper also takes a DataFrame,
    bytes or any object (pickled) there."""
    kind, spec = str(wanted.kind), wanted.spec
    if isinstance(item, Entity):
        return _Link(item)
    if isinstance(item, (str, Path)):
        source = _existing(Path(item), name)
    elif is_dataframe(item):
        source = write_frame(item, folder, name)
    elif isinstance(item, bytes):
        source = folder / f"{name}.bin"
        source.write_bytes(item)
    else:
        source = _pickled(item, name, folder)
    log_kind = getattr(Project, f"log_{DECLARED_KINDS[kind]}")
    return lambda project: log_kind(project, name, kind, source=source, **spec)


class _Link:
    """Keeps an entity the handler returns as an output of the run, as it is (never removed
    again: what the handler logged stays, as DigitalHub keeps it)."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity

    def __call__(self, project: Project) -> Entity:
        if project.run is not None:
            project.run.produce(self.entity)
        return self.entity


def _existing(path: Path, name: str) -> Path:
    if not path.exists():
        raise OutputError(f"output {name!r}: {path} is not a file or a folder")
    return path


def _pickled(item: Any, name: str, folder: Path) -> Path:
    """The item pickled into `<name>.pickle` (as DigitalHub keeps objects of other types)."""
    import pickle

    try:
        data = pickle.dumps(item)
    except Exception as exc:
        reason = _reason(exc)
        raise OutputError(
            f"output {name!r}: a {type(item).__name__} cannot be pickled ({reason}): return a "
            "DataFrame, a number, a string, a pathlib.Path or an entity, or log it yourself"
        ) from None
    path = folder / f"{name}.pickle"
    path.write_bytes(data)
    return path


def _reason(exc: BaseException) -> str:
    """An exception in one line: its type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())

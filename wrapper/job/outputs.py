"""A job's return value → results (plain values) and outputs (entities), and the
`@wrapper.handler(outputs=[...])` declaration of the outputs' names (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from wrapper.entities.keys import name_fault
from wrapper.entities.objects import Entity
from wrapper.entities.project import Project, is_dataframe
from wrapper.errors import ExitCode, SpecError, WrapperError

F = TypeVar("F", bound=Callable[..., Any])

OUTPUTS_ATTRIBUTE = "__fn_wrapper_outputs__"
RESULT_TYPES = (str, int, float, bool, type(None))


class OutputError(WrapperError):
    """A return value that cannot be kept as a result or an output (the run is an error)."""

    exit_code = ExitCode.HANDLER_FAILED


def handler(outputs: Optional[list[str]] = None) -> Callable[[F], F]:
    """Declare the names of a job handler's outputs, in the order it returns them.

    The function itself is returned unchanged (it still runs as written elsewhere); a
    function written for the DigitalHub python runtime needs only its import changed."""

    def declare(func: F) -> F:
        setattr(func, OUTPUTS_ATTRIBUTE, outputs)
        return func

    return declare


def declared_names(func: Any) -> list[str]:
    """The output names `func` declares, checked before it runs: each a name of the key
    grammar (it may name an entity), each once (SpecError otherwise)."""
    names = getattr(func, OUTPUTS_ATTRIBUTE, None) or []
    field = "@handler(outputs=...)"
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise SpecError(f"{field}: expected a list of names, got {names!r}")
    for index, name in enumerate(names):
        fault = name_fault(name=name)
        if fault:
            raise SpecError(f"{field}: output {index}: {fault}")
        if name in names[:index]:
            raise SpecError(f"{field}: output {name!r} is declared twice")
    return list(names)


def collect(
    value: Any, names: list[str], project: Project
) -> tuple[dict[str, Any], dict[str, str]]:
    """The results (plain values by name) and outputs (entity keys by name) of a return
    value, or of each item of a returned tuple or list: `names` first, then `output_<n>`."""
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    if value is None:
        values = [] if not names else [None]
    if len(names) > len(values):
        raise OutputError(
            f"the handler declares {len(names)} outputs ({', '.join(names)}) but returned "
            f"{len(values)} value(s)"
        )
    results: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    for index, item in enumerate(values):
        name = names[index] if index < len(names) else f"output_{index}"
        entity = _kept(item, name, project)
        if entity is not None:
            outputs[name] = entity.key
        else:
            results[name] = item
    return results, outputs


def _kept(item: Any, name: str, project: Project) -> Optional[Entity]:
    """_entity, its failures (a DataFrame that cannot be written, a store that fails) one
    OutputError naming the output."""
    try:
        return _entity(item, name, project)
    except OutputError:
        raise
    except WrapperError as exc:
        raise OutputError(f"output {name!r}: {exc.message}") from None
    except Exception as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        what = type(item).__name__
        raise OutputError(f"output {name!r}: a {what} cannot be kept: {reason}") from None


def _entity(item: Any, name: str, project: Project) -> Optional[Entity]:
    """The entity an item becomes (None for a plain result)."""
    if isinstance(item, RESULT_TYPES):
        return None
    if isinstance(item, Entity):
        if project.run is not None:
            project.run.produce(item)
        return item
    if is_dataframe(item):
        return project.log_dataitem(name, kind="table", data=item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return project.log_artifact(name, data=bytes(item))
    if isinstance(item, Path):
        if not item.is_file():
            raise OutputError(f"output {name!r}: {item} is not a file")
        return project.log_artifact(name, source=item)
    if isinstance(item, dict):
        try:
            json.dumps(item)
        except (TypeError, ValueError) as exc:
            raise OutputError(f"output {name!r}: a dict that is not JSON ({exc})") from None
        return None
    raise OutputError(
        f"output {name!r}: a {type(item).__name__} cannot be kept (results: str, int, float, "
        "bool, None, a JSON dict; outputs: a DataFrame, bytes, a pathlib.Path, an entity)"
    )

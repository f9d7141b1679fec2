"""The job door's side of a KFP component's contract (the component: wrapper/kfp/component.py).

KFP's launcher fills the component's command line: `--kfp-parameter NAME TYPE VALUE` (a value
as KFP renders it: `5`, `0.5`, `true`, JSON for objects and arrays), `--kfp-input NAME TYPE
PATH` (an input artifact's local file or folder) and `--kfp-output NAME TYPE PATH` (where an
output artifact's content, or an output parameter's value, is to be written). Input artifacts
are registered in the run's store in place (nothing copied) as `kfp.<name>`; after the run
completes, each output is written to its path: a result as text, an entity's content as it
was kept (a table as Parquet, or CSV without pyarrow; an object pickled; a folder's files).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable, NamedTuple

from wrapper.entities.keys import EntityKey
from wrapper.entities.project import Project
from wrapper.errors import SpecError
from wrapper.job.outputs import OutputError
from wrapper.kfp.component import ENTITY_TYPES
from wrapper.plan import FunctionPlan

ENTITY_KINDS = {"dataitem": "table", "artifact": "artifact", "model": "model"}
"""The kind an input artifact is registered with, per entity type."""
PARQUET_MAGIC = b"PAR1"


def _integer(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(number)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ValueError(f"{text!r} is not true or false")
    return lowered in ("true", "1")


def _json(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = json.loads(text)
        if not isinstance(value, kind):
            raise ValueError(f"expected a JSON {'object' if kind is dict else 'array'}")
        return value

    return parse


PARSERS: dict[str, Callable[[str], Any]] = {
    "Integer": _integer, "Float": float, "String": str, "Boolean": _boolean,
    "JsonObject": _json(dict), "JsonArray": _json(list),
}  # fmt: skip
"""Each KFP parameter type: its value as the launcher renders it → the Python value."""


class Port(NamedTuple):
    name: str
    type: str
    value: str


class Contract:
    """The `--kfp-*` arguments of one run."""

    def __init__(self, parameters: list[Port], inputs: list[Port], outputs: list[Port]) -> None:
        for flag, ports, types in (
            ("--kfp-parameter", parameters, PARSERS),
            ("--kfp-input", inputs, ENTITY_TYPES),
            ("--kfp-output", outputs, {**PARSERS, **ENTITY_TYPES}),
        ):
            for port in ports:
                if port.type not in types:
                    raise SpecError(
                        f"{flag} {port.name}: type {port.type!r} is not one of {', '.join(types)}"
                    )
        self.parameters, self.inputs, self.outputs = parameters, inputs, outputs

    @classmethod
    def of(cls, values: dict[str, Any]) -> Contract | None:
        """The contract the settings' `kfp_*` values give; None without any."""
        found = [
            [Port(*v) for v in values.get(f"kfp_{k}") or []]
            for k in ("parameter", "input", "output")
        ]
        return cls(*found) if any(found) else None

    def applied(self, plan: FunctionPlan, project: Project) -> FunctionPlan:
        """The plan with the parameters given and the input artifacts registered as inputs."""
        parameters = dict(plan.parameters)
        for port in self.parameters:
            try:
                parameters[port.name] = PARSERS[port.type](port.value)
            except ValueError as exc:
                raise SpecError(f"--kfp-parameter {port.name}: {port.type}: {exc}") from None
        inputs = dict(plan.inputs)
        for port in self.inputs:
            inputs[port.name] = str(_register(project, port).key)
        return dataclasses.replace(plan, parameters=parameters, inputs=inputs)

    def export(self, results: dict[str, Any], outputs: dict[str, str], project: Project) -> None:
        """Write each output of a completed run where KFP wants it (the job runner's
        `deliver`); a missing or mistyped one is an OutputError naming it."""
        for port in self.outputs:
            target = Path(port.value)
            if port.type in PARSERS:
                if port.name not in results:
                    raise _missing(port, "result", results)
                value = results[port.name]
                _writable(target).write_text(value if isinstance(value, str) else json.dumps(value))
                continue
            key = outputs.get(port.name)
            if key is None:
                raise _missing(port, "output", outputs)
            entity_type = EntityKey.parse(key).entity_type
            if entity_type != ENTITY_TYPES[port.type]:
                raise OutputError(
                    f"--kfp-output {port.name}: the run made a {entity_type}, the component"
                    f" declares a {port.type} ({ENTITY_TYPES[port.type]})"
                )
            reader = Project(project.name, project.store)  # reading is no part of the lineage
            entity = getattr(reader, f"get_{entity_type}")(key)
            if entity.is_folder:
                shutil.copytree(entity.as_file(), _writable(target), dirs_exist_ok=True)
            else:
                with entity.open() as stream, _writable(target).open("wb") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)


def _writable(target: Path) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--kfp-output: cannot write {target}: {exc.strerror}") from None
    return target


def _register(project: Project, port: Port) -> Any:
    path = Path(port.value).resolve()
    if not path.exists():
        raise SpecError(f"--kfp-input {port.name}: {port.value} does not exist")
    entity_type = ENTITY_TYPES[port.type]
    fields: dict[str, Any] = {"path": str(path)}
    if entity_type == "dataitem" and path.is_file():  # KFP's paths have no suffix to tell it
        with path.open("rb") as stream:
            fields["format"] = "parquet" if stream.read(4) == PARQUET_MAGIC else "csv"
    new = getattr(project, f"new_{entity_type}")
    return new(f"kfp.{port.name}", ENTITY_KINDS[entity_type], **fields)


def _missing(port: Port, what: str, found: dict[str, Any]) -> OutputError:
    has = f"it has: {', '.join(found)}" if found else "it has none"
    return OutputError(f"--kfp-output {port.name}: the run has no {what} {port.name!r} ({has})")

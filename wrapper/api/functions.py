"""Functions kept in the store by name and version (`store://<project>/function/python/<name>:<id>`,
as DigitalHub writes their keys), and `function.run(...)` through the doors (DESIGN §11)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from wrapper.entities.record import EntityRecord, Fields, RecordView
from wrapper.errors import SpecError

if TYPE_CHECKING:
    from wrapper.api.runs import LocalRun
    from wrapper.entities.project import Project

FLAGS = ("code", "base64", "code_src", "handler", "init_function", "name", "python_version")
"""Function fields that are also settings (flags, FN_WRAPPER_* twins): an API argument outranks
its twin, which outranks the default, as a flag does."""

ACTIONS = ("job", "serve", "build")
BUILD_OPTIONS = ("builder", "target_image", "push_image", "wheelhouse")
"""`run(action="build", …)` arguments that are the build action's, not task fields."""


class Function(RecordView):
    """One version of a function: its fields (`spec`), and `run()` for each action."""

    def __init__(self, record: EntityRecord, project: Project) -> None:
        self.record, self.project = record, project

    @property
    def spec(self) -> Fields:
        """The function's fields, as DESIGN §2 has them (the source nested under `source`)."""
        return self.record.spec

    def run(
        self,
        action: str = "job",
        *,
        inputs: Optional[dict[str, str]] = None,
        parameters: Optional[dict[str, Any]] = None,
        init_parameters: Optional[dict[str, Any]] = None,
        local_execution: bool = True,
        wait: bool = True,
        **task: Any,
    ) -> LocalRun:
        """Run the function through the door of `action` in a child process (user code never
        runs here); with `local_execution=False`, render its manifests instead. A `job` is
        waited for unless `wait=False`; a `serve` returns once it answers /ready."""
        from wrapper.api import runs

        if action not in ACTIONS:
            raise SpecError(f"run(action={action!r}): expected one of {', '.join(ACTIONS)}")
        build = {k: task.pop(k) for k in BUILD_OPTIONS if k in task}
        if build and action != "build":
            raise SpecError(f"run({next(iter(build))}=…): only the build action takes it")
        target = task.pop("target", "kubernetes")
        document = run_document(
            self.spec,
            {"action": action, **task},
            {
                "inputs": inputs or {},
                "parameters": parameters or {},
                "init_parameters": init_parameters or {},
                "local_execution": local_execution,
            },
        )
        if not local_execution:
            return runs.render(self, document, target)
        if action == "job":
            job = runs.start_job(self, document)
            return job.wait() if wait else job
        if action == "serve":
            return runs.start_serve(self, document)
        return runs.run_build(self, document, build)

    def with_image(self, image: str) -> Function:
        """Keep a new version of this function whose `image` is `image`; this object becomes
        that version (later renders use the image)."""
        spec = {**self.spec, "image": image}
        self.record = keep(self.project, self.name, self.kind, spec)
        return self

    def __repr__(self) -> str:
        return f"Function({self.key!r})"


def new_function(project: Project, name: str, kind: str = "python", **fields: Any) -> Function:
    """Validate the function's fields as the spec models do (same messages) and keep it as a
    new version of `name` in `project`."""
    spec = function_fields({"name": name, "kind": kind, **fields})
    return Function(keep(project, name, kind, spec), project)


def function_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The validated function fields: API arguments over their FN_WRAPPER_* twins over
    defaults, a relative local `code_src` made absolute from the working folder."""
    from wrapper.config import overlay
    from wrapper.settings import SOURCE_OPTIONS, resolve
    from wrapper.sources.uri import uri_scheme
    from wrapper.spec.document import validate_document

    given = {k: fields.pop(k) for k in FLAGS if fields.get(k) is not None}
    settings = resolve(given, SOURCE_OPTIONS, os.environ)
    document = validate_document(overlay({"function": fields}, None, settings))
    spec: dict[str, Any] = document.function.model_dump(mode="json")
    source = spec["source"]
    code_src, inline = source.get("code_src"), source.get("code") or source.get("base64")
    if code_src and not inline and not uri_scheme(code_src):
        source["code_src"] = str(Path(code_src).expanduser().absolute())
    return spec


def run_document(
    function: dict[str, Any], task: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    """The run spec document a door reads, validated here first (the CLI's messages)."""
    from wrapper.spec.document import validate_document

    document = {"function": dict(function), "task": task, "run": run}
    validated = validate_document(document)
    return json.loads(validated.model_dump_json(exclude_unset=True))  # type: ignore[no-any-return]


def keep(project: Project, name: str, kind: str, spec: dict[str, Any]) -> EntityRecord:
    """A new version of function `name` in the project's store."""
    record = EntityRecord(project.name, "function", kind, name, spec=spec)
    project.store.put(record, None, name)
    return record

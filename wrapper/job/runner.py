"""One job run: inputs resolved, the handler called once, its value kept, the status written.

Every way out is a state and an exit code (DESIGN §5): COMPLETED 0; ERROR 1 when the handler
(or keeping its value) failed, 2 for a bad argument or input, 3 for the source, 4 for init;
STOPPED 143 on SIGTERM, which interrupts the handler where it is (also as PID 1 in a
container, where SIGTERM does nothing unless a handler is installed).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from wrapper.entities.keys import EntityKey
from wrapper.entities.objects import Entity, entity_object
from wrapper.entities.project import Project, Run
from wrapper.entities.store import Store
from wrapper.errors import ExitCode, WrapperError
from wrapper.job.outputs import collect, declared_names
from wrapper.job.status import RunStatus
from wrapper.plan import FunctionPlan

log = logging.getLogger("wrapper.job")


class Stopped(BaseException):
    """SIGTERM: the run stops where it is (a BaseException, so handlers' `except
    Exception` blocks do not swallow it)."""


def run_job(
    plan: FunctionPlan,
    store: Store,
    project_name: str,
    run_id: Optional[str] = None,
    status_file: Optional[Path] = None,
    source_settings: Any = None,
) -> tuple[int, RunStatus]:
    """Run `plan` once; the exit code and the final status."""
    run = Run(project_name, run_id, plan.name, "job", {"parameters": plan.parameters})
    project = Project(project_name, store, run)
    status = RunStatus(run, store, status_file)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        status.set("RUNNING", inputs=dict(plan.inputs))
        code = _execute(plan, project, status, source_settings)
    except Stopped:
        log.warning("stopped by SIGTERM")
        status.set("STOPPED", "stopped by SIGTERM")
        code = ExitCode.STOPPED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return int(code), status


def _stop(number: int, frame: Any) -> None:
    raise Stopped()


def _execute(plan: FunctionPlan, project: Project, status: RunStatus, settings: Any) -> int:
    from wrapper.context import make_context
    from wrapper.loader import user_traceback
    from wrapper.prepare import prepare_function

    run = project.run
    try:
        inputs = resolve_inputs(plan.inputs, project)
        context = make_context(trigger_kind="job")
        context.project, context.run = project, run
        function = prepare_function(
            plan,
            trigger_kind="job",
            source_settings=settings,
            inputs=inputs,
            reserved={"project": project, "run": run},
            context=context,
        )
        function.start()
    except WrapperError as exc:
        return _failed(status, exc.message, exc.exit_code, exc.details)
    try:
        value = function.call(None)
        if function.is_async:
            import asyncio

            value = asyncio.run(_awaited(value))
    except Exception as exc:
        message = f"the handler raised {type(exc).__name__}: {exc}"
        return _failed(status, message, ExitCode.HANDLER_FAILED, user_traceback(exc))
    try:
        results, outputs = collect(value, declared_names(function.handler), project)
    except WrapperError as exc:
        return _failed(status, exc.message, ExitCode.HANDLER_FAILED, exc.details)
    status.set("COMPLETED", results=results, outputs=outputs)
    return ExitCode.COMPLETED


def resolve_inputs(inputs: Mapping[str, str], project: Project) -> dict[str, Entity]:
    """Each input key → the object of the version it names (a clear error for a key that
    is malformed or names nothing, before the handler runs)."""
    objects = {}
    for name, text in inputs.items():
        field = f"inputs.{name}"
        key = EntityKey.parse(text, field)
        record = project.store.find(key, project.name, key.entity_type, field)
        objects[name] = entity_object(record, project.store)
        if project.run is not None:
            project.run.consume(objects[name])
    return objects


def _failed(status: RunStatus, message: str, code: int, details: Optional[str]) -> int:
    log.error("%s", message, extra={"with": {"traceback": details}} if details else None)
    status.set("ERROR", message)
    return code


async def _awaited(value: Any) -> Any:
    return await value

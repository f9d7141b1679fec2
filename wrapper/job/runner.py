"""One job run: inputs resolved, the handler called once, its value kept, the status written.

Every way out is a final state and an exit code (DESIGN §5): COMPLETED 0; ERROR 1 when the
handler (or keeping its value) failed, by any exception (`sys.exit()`, KeyboardInterrupt and
any other BaseException too: only the stop signals below are the runtime's own); 2 for a bad
argument, input or store before the handler runs, 3 for the source, 4 for init, 5 for a bug
of the runtime; STOPPED 143 on SIGTERM and 130 on SIGINT, which interrupt the handler where it
is (also as PID 1 in a container, where SIGTERM does nothing unless a handler is installed).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from wrapper.entities.keys import EntityKey
from wrapper.entities.objects import Entity, entity_object
from wrapper.entities.project import Project
from wrapper.entities.run import Run
from wrapper.entities.store import Store
from wrapper.errors import ExitCode, SpecError, WrapperError
from wrapper.invocation import RESERVED, Interruption
from wrapper.job.outputs import collect, declared_outputs, discard
from wrapper.job.status import RunStatus
from wrapper.plan import FunctionPlan

log = logging.getLogger("wrapper.job")

SIGINT_EXIT = 130
"""The exit code of a run stopped by SIGINT (Ctrl-C), as shells report it."""


class Stopped(Interruption):
    """SIGTERM or SIGINT: the run stops where it is (a BaseException, so handlers' `except
    Exception` blocks do not swallow it; an Interruption, so no door takes it for the
    handler's failure)."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.name = signal.Signals(number).name
        self.code = ExitCode.STOPPED if number == signal.SIGTERM else SIGINT_EXIT


Deliver = Callable[[dict[str, Any], dict[str, str], Project], None]
"""Hands a completed run's results and outputs (entity keys) on, e.g. to KFP's paths."""


class Outcome(NamedTuple):
    """How a run ended: its final state, exit code, message and the fields it keeps."""

    state: str
    code: int
    message: str = ""
    fields: Mapping[str, Any] = {}


def run_job(
    plan: FunctionPlan,
    store: Store,
    project_name: str,
    run_id: Optional[str] = None,
    status_file: Optional[Path] = None,
    source_settings: Any = None,
    deliver: Optional[Deliver] = None,
) -> tuple[int, RunStatus]:
    """Run `plan` once; the exit code and the final status (always written: a run never
    ends RUNNING unless the process is killed). The handler sees the run id as `RUN_ID`, as
    in a DigitalHub run's container. `deliver` gets the results and outputs of a run that
    completed, before its final status: a WrapperError it raises fails the run."""
    run = Run(project_name, run_id, plan.name, "job", {"parameters": plan.parameters}, store)
    os.environ["RUN_ID"] = run.id
    project = Project(project_name, store, run)
    status = RunStatus(run, store, status_file)
    if run_id is not None and status.resume(_earlier(store, project_name, run_id)):
        log.warning("run %s has completed already: it is not run again", run_id)
        status.write()  # the status file too, as the first attempt left it
        return ExitCode.COMPLETED, status
    created: list[Entity] = []  # versions the return value made: removed unless COMPLETED
    stop = _Stop()
    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            outcome = _attempt(plan, project, status, source_settings, created, deliver)
            stop.armed = False  # from here a signal waits: the final status is written first
        except Stopped as stopped:  # raised once at most: the handler disarms itself
            log.warning("stopped by %s", stopped.name)
            outcome = Outcome("STOPPED", stopped.code, f"stopped by {stopped.name}")
        return _finish(status, outcome, created), status
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _earlier(store: Store, project: str, run_id: str) -> Optional[dict[str, Any]]:
    """The status document of an earlier attempt of this run, if there was one."""
    from wrapper.entities.store import EntityNotFound

    try:
        return store.get_run(project, run_id)
    except EntityNotFound:
        return None


class _Stop:
    """The SIGTERM and SIGINT handler: raises Stopped in the run, once, while it is armed."""

    def __init__(self) -> None:
        self.armed = True

    def __call__(self, number: int, frame: Any) -> None:
        if self.armed:
            self.armed = False
            raise Stopped(number)


def _attempt(
    plan: FunctionPlan,
    project: Project,
    status: RunStatus,
    settings: Any,
    created: list[Entity],
    deliver: Optional[Deliver],
) -> Outcome:
    """The RUNNING status, then the run; its outcome (Stopped propagates)."""
    try:
        status.set("RUNNING", inputs=dict(plan.inputs))
        return _execute(plan, project, settings, created, deliver)
    except Stopped:
        raise
    except WrapperError as exc:  # the store refused the RUNNING status: nothing ran
        return _failed(exc.message, exc.exit_code, exc.details)
    except BaseException as exc:
        return _internal(exc)


def _execute(
    plan: FunctionPlan,
    project: Project,
    settings: Any,
    created: list[Entity],
    deliver: Optional[Deliver],
) -> Outcome:
    """Prepare, call and keep; the outcome (a signal and bugs propagate)."""
    from wrapper.context import make_context
    from wrapper.events import make_event
    from wrapper.loader import user_traceback
    from wrapper.prepare import prepare_handler

    run = project.run
    try:
        check_argument_names(plan.parameters, plan.inputs)
        inputs = resolve_inputs(plan.inputs, project)
        reserved = {"project": project, "run": run}
        function = prepare_handler(
            plan,
            trigger_kind="job",
            source_settings=settings,
            inputs=inputs,
            reserved=reserved,
            context=make_context(trigger_kind="job", reserved=reserved),
        )
        declared = declared_outputs(function.handler)
        function.start()  # whatever init raises is an InitError, but Stopped
    except WrapperError as exc:
        return _failed(exc.message, exc.exit_code, exc.details)
    body = json.dumps(plan.parameters, default=str).encode()
    event = make_event(
        body,
        method="POST",
        headers={"Content-Type": "application/json"},
        trigger_kind="job",
        request_id=run.id if run is not None else None,
    )
    try:
        value = function.call(event)
        if function.is_async or isinstance(value, Awaitable):  # also a sync-looking one's
            import asyncio

            value = asyncio.run(_awaited(value))
    except Stopped:
        raise
    except BaseException as exc:  # anything the handler raises is its failure
        message = f"the handler raised {_raised(exc)}"
        return _failed(message, ExitCode.HANDLER_FAILED, user_traceback(exc))
    try:
        results, outputs = collect(value, declared, project, created)
        if deliver is not None:
            deliver(results, outputs, project)
    except WrapperError as exc:
        return _failed(exc.message, ExitCode.HANDLER_FAILED, exc.details)
    return Outcome("COMPLETED", ExitCode.COMPLETED, fields={"results": results, "outputs": outputs})


def check_argument_names(parameters: Mapping[str, Any], inputs: Mapping[str, str]) -> None:
    """A parameter or input may not take a reserved name, nor an input's and a parameter's
    name be the same (one would be lost)."""
    for field, names in (("parameters", parameters), ("inputs", inputs)):
        taken = sorted(set(names) & set(RESERVED))
        if taken:
            raise SpecError(
                f"{field}.{taken[0]}: {taken[0]!r} is reserved for the runtime "
                f"({', '.join(RESERVED)}): rename the argument"
            )
    both = sorted(set(parameters) & set(inputs))
    if both:
        raise SpecError(
            f"inputs.{both[0]}: {both[0]!r} is both an input and a parameter: give it once"
        )


def resolve_inputs(inputs: Mapping[str, str], project: Project) -> dict[str, Entity]:
    """Each input key → the object of the version it names (a clear error for a key that
    is malformed or names nothing, before the handler runs)."""
    objects = {}
    for name, text in inputs.items():
        field = f"inputs.{name}"
        key = EntityKey.parse(text, field)
        record = project.store.find(key, project.name, key.entity_type, field)
        objects[name] = entity_object(record, project.store, project.run)
        if project.run is not None:
            project.run.consume(objects[name])
    return objects


def _raised(exc: BaseException) -> str:
    """What a handler or init raised, in words (sys.exit() says how it exited)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: it called sys.exit({exc.code!r}) instead of returning"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _failed(message: str, code: int, details: Optional[str]) -> Outcome:
    log.error("%s", message, extra={"with": {"traceback": details}} if details else None)
    return Outcome("ERROR", code, message)


def _internal(exc: BaseException) -> Outcome:
    """A bug of the runtime: one line, the whole traceback as a log field to report."""
    import traceback

    message = f"internal error (a bug in fn-wrapper: please report it): {_raised(exc)}"
    return _failed(
        message,
        ExitCode.INTERNAL_ERROR,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def _finish(status: RunStatus, outcome: Outcome, created: list[Entity]) -> int:
    """Write the final status; a store that refuses it fails the run (the status file, when
    asked for, still gets it). A run that does not complete keeps none of the versions its
    return value made (`created`), so none is the latest of its name."""
    if outcome.state != "COMPLETED":
        discard(created, status.store, status.run)
    try:
        status.set(outcome.state, outcome.message, **outcome.fields)
    except WrapperError as exc:
        message = f"the final status was not kept: {exc.message}"
        log.error("%s", message)
        if outcome.state == "COMPLETED":
            failed = Outcome("ERROR", ExitCode.HANDLER_FAILED, message, {"results": {}})
            return _finish(status, failed, created)
        return outcome.code
    except Exception as exc:
        if outcome.state == "ERROR":
            return outcome.code
        return _finish(status, _internal(exc), created)
    return outcome.code


async def _awaited(value: Any) -> Any:
    return await value

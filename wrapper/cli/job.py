"""`fn-wrapper job`: one run of the handler with entity inputs; a status document and the
exit codes of DESIGN §5; one summary line on stdout."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from wrapper.settings import (
    SOURCE_OPTIONS,
    STORE_OPTIONS,
    Option,
    Settings,
    json_object,
    project_of,
)

OPTIONS = (
    *SOURCE_OPTIONS,
    *STORE_OPTIONS,
    Option(
        "--inputs",
        "entity inputs, a JSON object of argument name → store:// key, merged over the spec's",
        parse=json_object,
        metavar="JSON",
    ),
    Option("--run-id", "the run's id (default: $RUN_ID, else a new UUID4)"),
    Option("--status-file", "also write the status document to this file", metavar="PATH"),
    *(
        Option(
            f"--kfp-{name}",
            f"Kubeflow Pipelines: {what} (a component's command line; repeat for more)",
            repeat=True,
            arity=3,
            metavar=("NAME", "TYPE", last),
            twin=False,
        )
        for name, what, last in (
            ("parameter", "a parameter's value, as the launcher renders it", "VALUE"),
            ("input", "an input artifact's local path", "PATH"),
            ("output", "where an output (artifact or parameter) is written", "PATH"),
        )
    ),
)


def run(settings: Settings) -> int:
    """Validate, open the store, run the job; print a summary line; the run's exit code."""
    from wrapper.config import source_settings
    from wrapper.entities.project import Project
    from wrapper.spec.background import validate

    pending = validate(settings)
    try:  # while the validator works: the job's own imports, and the store setting checked
        import wrapper.prepare  # noqa: F401
        from wrapper.entities.reserved import LazyStore
        from wrapper.job.runner import run_job

        contract = None
        if any(settings.values.get(f"kfp_{k}") for k in ("parameter", "input", "output")):
            from wrapper.kfp.contract import Contract

            contract = Contract.of(settings.values)
        scratch = None
        if contract is not None and settings.layers["store"] == "default":
            scratch = tempfile.mkdtemp(prefix="fn-wrapper-kfp-")  # no store asked for
        store = LazyStore(scratch or settings.store)  # made once the spec is valid
        plan = pending.plan()
    finally:
        pending.close()
    try:
        project = project_of(settings, plan.project)
        if contract is not None:
            plan = contract.applied(plan, Project(project, store))
        code, status = run_job(
            plan,
            store,
            project,
            run_id=settings.run_id or os.environ.get("RUN_ID") or None,
            status_file=Path(settings.status_file) if settings.status_file else None,
            source_settings=source_settings(settings, os.environ),
            deliver=contract.export if contract is not None else None,
        )
    finally:
        store.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    document = status.shown()
    summary = {k: document[k] for k in ("id", "state", "results", "outputs", "message")}
    print(json.dumps(summary, sort_keys=True, default=str), flush=True)
    return code

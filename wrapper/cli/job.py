"""`fn-wrapper job`: one run of the handler with entity inputs; a status document and the
exit codes of DESIGN §5; one summary line on stdout."""

from __future__ import annotations

import json
import os
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
)


def run(settings: Settings) -> int:
    """Validate, open the store, run the job; print a summary line; the run's exit code."""
    from wrapper.config import source_settings
    from wrapper.spec.background import validate

    pending = validate(settings)
    try:  # while the validator works: the job's own imports, and the store setting checked
        import wrapper.prepare  # noqa: F401
        from wrapper.entities.reserved import LazyStore
        from wrapper.job.runner import run_job

        store = LazyStore(settings.store)  # made once the spec is valid (the RUNNING status)
        plan = pending.plan()
    finally:
        pending.close()
    try:
        code, status = run_job(
            plan,
            store,
            project_of(settings, plan.project),
            run_id=settings.run_id or os.environ.get("RUN_ID") or None,
            status_file=Path(settings.status_file) if settings.status_file else None,
            source_settings=source_settings(settings, os.environ),
        )
    finally:
        store.close()
    document = status.shown()
    summary = {k: document[k] for k in ("id", "state", "results", "outputs", "message")}
    print(json.dumps(summary, sort_keys=True, default=str), flush=True)
    return code

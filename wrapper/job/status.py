"""A run's status document (DESIGN §5), written whole at each change: into the store and,
when asked, into a file (for a Kubernetes termination message or a CI step)."""

from __future__ import annotations

import datetime
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from wrapper.entities.run import Run
from wrapper.entities.store import Store
from wrapper.entities.transfer import remove_partials, write_file
from wrapper.secrets import Redaction

STATES = ("RUNNING", "COMPLETED", "ERROR", "STOPPED")
NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
"""How a non-finite float is written (JSON has no such number); NaN is "NaN"."""


class RunStatus:
    """The status of one run, as the store and the status file show it. The run's `status`
    is this document (with its metrics so far)."""

    def __init__(self, run: Run, store: Store, status_file: Optional[Path] = None) -> None:
        self.run, self.store, self.status_file = run, store, status_file
        self.document: dict[str, Any] = {
            "id": run.id,
            "project": run.project,
            "function": run.function,
            "action": run.action,
            "state": None,
            "started": _now(),
            "finished": None,
            "results": {},
            "outputs": {},
            "inputs": {},
            "message": "",
            "metrics": {},
            "consumed": [],
            "produced": [],
            "attempts": 1,
            "earlier_attempts": [],
        }
        run.document = self.document
        if status_file is not None:  # a killed run's partial file: the file is this run's now
            remove_partials(status_file)

    def resume(self, earlier: Optional[dict[str, Any]]) -> bool:
        """Take the document of an earlier attempt of this run (a Job's or a pipeline's retry):
        True when it completed (its document stays as it is and nothing runs again); else
        this attempt counts on from it and keeps its end among the `earlier_attempts`."""
        if earlier is None:
            return False
        if earlier.get("state") == "COMPLETED":
            self.document = earlier
            self.run.document = earlier
            return True
        attempts = earlier.get("attempts")
        count = attempts if isinstance(attempts, int) and attempts > 0 else 1
        ended = {key: earlier.get(key) for key in ("state", "started", "finished", "message")}
        if ended["state"] == "RUNNING":
            ended["message"] = "ended without a final status: the process was killed"
        history = earlier.get("earlier_attempts")
        history = history if isinstance(history, list) else []
        self.document.update(
            attempts=count + 1, earlier_attempts=[*history, {"attempt": count, **ended}]
        )
        return False

    @property
    def state(self) -> Optional[str]:
        return self.document["state"]  # type: ignore[no-any-return]

    def set(self, state: str, message: str = "", **fields: Any) -> None:
        """Move to `state` (with fields such as results, inputs, and the outputs it returned:
        the entities the handler logged come first, as DigitalHub merges them) and write."""
        assert state in STATES, state
        fields["outputs"] = {**self.run.logged, **fields.get("outputs", {})}
        self.document.update(json_safe(fields), state=state, message=message)
        self.document.update(json_safe(self.run.lineage()))
        if state != "RUNNING":
            self.document["finished"] = _now()
        self.write()

    def shown(self) -> dict[str, Any]:
        """The document as it leaves the process: secrets masked (a message built from an
        exception, or a result, may hold one: `wrapper.secrets`)."""
        return Redaction.from_environment().value(self.document)  # type: ignore[no-any-return]

    def write(self) -> None:
        """Into the store, and into the status file even when the store fails."""
        shown = self.shown()
        try:
            self.store.put_run(shown)
        finally:
            if self.status_file is not None:
                data = json.dumps(shown, indent=2, sort_keys=True).encode() + b"\n"
                write_file(self.status_file, io.BytesIO(data), "status")


def json_safe(value: Any) -> Any:
    """`value` as JSON can hold it, nothing dropped: a non-finite float as a string ("NaN",
    "Infinity", "-Infinity"), a NumPy-style scalar as its Python value, mapping keys as text,
    and anything else JSON has no type for as its `str()`."""
    if isinstance(value, float):
        return value if math.isfinite(value) else NON_FINITE.get(value, "NaN")
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    native = getattr(value, "item", None)  # numpy.int64(3).item() == 3
    if callable(native):
        try:
            plain = native()
        except (TypeError, ValueError):
            plain = value
        if isinstance(plain, (str, int, float)):
            return json_safe(plain)
    return str(value)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()

"""A run's status document (DESIGN §5), written whole at each change: into the store and,
when asked, into a file (for a Kubernetes termination message or a CI step)."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any, Optional

from wrapper.entities.project import Run
from wrapper.entities.store import Store
from wrapper.entities.transfer import write_file

STATES = ("RUNNING", "COMPLETED", "ERROR", "STOPPED")


class RunStatus:
    """The status of one run, as the store and the status file show it."""

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
            "consumed": [],
            "produced": [],
        }

    @property
    def state(self) -> Optional[str]:
        return self.document["state"]  # type: ignore[no-any-return]

    def set(self, state: str, message: str = "", **fields: Any) -> None:
        """Move to `state` (with fields such as results, outputs, inputs) and write."""
        assert state in STATES, state
        self.document.update(fields, state=state, message=message)
        self.document["consumed"] = list(self.run.consumed)
        self.document["produced"] = list(self.run.produced)
        if state != "RUNNING":
            self.document["finished"] = _now()
        self.write()

    def write(self) -> None:
        self.store.put_run(self.document)
        if self.status_file is not None:
            data = json.dumps(self.document, indent=2, sort_keys=True).encode() + b"\n"
            write_file(self.status_file, io.BytesIO(data), "status")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()

"""The server's private state folder: workers' metrics and readiness files, the validated
spec, why a worker could not start (gunicorn itself only says "failed to boot") and how the
last reload went."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

_NAME = "failure.json"
_RELOAD = "reload.json"


def new_state_dir() -> Path:
    """A private folder (mode 0700) for one server run, removed when the server stops."""
    return Path(tempfile.mkdtemp(prefix="fn-wrapper-serve-"))


def record_failure(folder: Path, exit_code: int, message: str, details: Optional[str]) -> None:
    """Keep the first worker failure: its exit code (DESIGN §5), message and details."""
    entry = {"exit_code": exit_code, "message": message, "details": details}
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as out:
        json.dump(entry, out)
    try:
        os.link(out.name, folder / _NAME)  # fails if another worker's failure is already there
    except FileExistsError:
        pass
    finally:
        os.unlink(out.name)


def read_failure(folder: Path) -> Optional[dict[str, Any]]:
    """The recorded failure, if a worker left one."""
    return _read(folder / _NAME)


def take_failure(folder: Path) -> Optional[dict[str, Any]]:
    """The recorded failure, removed (a failure the server outlived is not its exit's)."""
    failure = read_failure(folder)
    with contextlib.suppress(OSError):
        (folder / _NAME).unlink()
    return failure


def record_reload(folder: Path, error: Optional[str]) -> None:
    """The last reload's outcome, for the test page: `error` None when the new code serves."""
    entry = {"ok": error is None, "time": time.time(), "error": error}
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as out:
        json.dump(entry, out)
    os.replace(out.name, folder / _RELOAD)


def read_reload(folder: Path) -> Optional[dict[str, Any]]:
    """The last reload's outcome, if the server has reloaded."""
    return _read(folder / _RELOAD)


def _read(path: Path) -> Optional[dict[str, Any]]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None

"""A document whose `task.action` names another door than the one running it is refused,
naming both, before anything runs; `invoke` runs any action (DESIGN §2, §10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FUNCTION = {
    "name": "echo",
    "python_version": "PYTHON3_11",
    "code": "def handler(event):\n    return 'ran'\n",
}


def fn_wrapper(tmp_path: Path, action: str, *args: str) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "run.yaml"
    spec.write_text(json.dumps({"function": FUNCTION, "task": {"action": action}}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ["XDG_DATA_HOME"] = str(tmp_path / "data")
    command = [sys.executable, "-m", "wrapper", *args, "--spec", str(spec)]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)


def door_args(door: str, tmp_path: Path) -> tuple[str, ...]:
    if door == "serve":  # free ports are not needed: it stops before it binds
        return ("serve", "--host", "127.0.0.1", "--port", "1", "--admin-port", "2")
    if door == "nuclio":
        return ("nuclio", "--event-socket-path", str(tmp_path / "none.sock"))
    return (door,)


@pytest.mark.parametrize(
    ("door", "action", "runs"),
    [
        ("serve", "job", "'serve'"),
        ("serve", "build", "'serve'"),
        ("job", "serve", "'job'"),
        ("job", "build", "'job'"),
        ("nuclio", "job", "'serve'"),
    ],
)
def test_a_document_for_another_action_is_refused_naming_both(
    tmp_path: Path, door: str, action: str, runs: str
) -> None:
    result = fn_wrapper(tmp_path, action, *door_args(door, tmp_path))
    assert result.returncode == 2, result.stderr
    assert (
        f"task.action: the document is for the {action!r} action, which fn-wrapper {door} "
        f"does not run (it runs {runs}): use fn-wrapper {action}, or change task.action"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing ran, no store was made


@pytest.mark.parametrize("action", ["job", "serve", "build"])
def test_invoke_runs_any_action(tmp_path: Path, action: str) -> None:
    result = fn_wrapper(tmp_path, action, "invoke")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran"


def test_the_job_door_runs_a_job_document(tmp_path: Path) -> None:
    result = fn_wrapper(tmp_path, "job", "job")
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert summary["state"] == "COMPLETED" and summary["results"] == {"output_0": "ran"}

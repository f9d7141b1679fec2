"""The log level holds for the handler's `context.logger` (nuclio-sdk's logger) in every door,
whatever the case it is given in (`--log-level` or `FN_WRAPPER_LOG_LEVEL`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
def handler(context, event):
    context.logger.debug("a debug line")
    context.logger.info("an info line")
    context.logger.error("an error line")
    return "ok"
"""


def run(door: str, tmp_path: Path, *args: str, env: dict[str, str]) -> str:
    (tmp_path / "main.py").write_text(CODE)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    extra = ("--store", str(tmp_path / "store")) if door == "job" else ()
    command = [sys.executable, "-m", "wrapper", door, "--code-src", "main.py", *extra, *args]
    result = subprocess.run(
        command, cwd=tmp_path, env={**environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("door", ["invoke", "job"])
def test_error_silences_debug_and_info_and_any_case_is_taken(door: str, tmp_path: Path) -> None:
    quiet = run(door, tmp_path, "--log-level", "ERROR", env={})
    assert "an error line" in quiet
    assert "an info line" not in quiet and "a debug line" not in quiet
    loud = run(door, tmp_path, env={"FN_WRAPPER_LOG_LEVEL": "Debug"})
    assert "a debug line" in loud and "an info line" in loud
    usual = run(door, tmp_path, env={})
    assert "an info line" in usual and "a debug line" not in usual  # the default: info

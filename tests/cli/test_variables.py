"""Environment twins cannot collide (DESIGN §10): an operand flag has none, and a FN_WRAPPER_*
variable no setting of any command reads is warned about once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def fn_wrapper(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    command = [sys.executable, "-m", "wrapper", *args, "--log-format", "text"]
    return subprocess.run(
        command, cwd=tmp_path, env={**environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_an_unknown_variable_is_warned_about_once(tmp_path: Path) -> None:
    code = "def handler(event):\n    return 'ok'\n"
    result = fn_wrapper(
        tmp_path, "invoke", "--code", code, FN_WRAPPER_WORKER="2", FN_WRAPPER_NAME="x"
    )
    assert result.returncode == 0 and result.stdout == "ok"
    warned = [line for line in result.stderr.splitlines() if "no setting of fn-wrapper" in line]
    assert len(warned) == 1 and "FN_WRAPPER_WORKER is set" in warned[0]  # NAME is a setting


def test_operand_variables_do_not_reach_the_store_command(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    (tmp_path / "data.csv").write_text("a\n1\n")
    put = fn_wrapper(
        tmp_path, "store", "put", "data.csv", "--store", store,
        FN_WRAPPER_NAME="myfunc", FN_WRAPPER_OUTPUT=str(tmp_path / "manifests"),
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    assert put.stdout.strip().startswith("store://default/dataitem/table/data:")
    listed = fn_wrapper(tmp_path, "store", "ls", "--store", store, FN_WRAPPER_NAME="myfunc")
    assert "/data:" in listed.stdout  # not filtered by the function's name
    assert not (tmp_path / "manifests").exists()

"""The job door's side of a KFP component's contract (`--kfp-parameter/--kfp-input/--kfp-output
NAME TYPE VALUE`), as real `fn-wrapper job` subprocesses, without kfp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CODE = """
from pathlib import Path
from wrapper import handler


@handler(outputs=["rows", "copy", "folder", "mean"])
def handler(table, scale: float = 1.0, tags: list = []):
    frame = table.as_df()
    folder = Path("out")
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "b.txt").write_text(",".join(tags))
    return len(frame), frame, folder, float(frame["x"].mean()) * scale
"""


def job(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "main.py").write_text(textwrap.dedent(CODE).lstrip())
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    environ["XDG_DATA_HOME"] = str(tmp_path / "data")  # the default store: must stay empty
    command = [sys.executable, "-m", "wrapper", "job", "--code-src", "main.py", *args]
    return subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def outputs(tmp_path: Path) -> list[str]:
    return [
        "--kfp-output", "rows", "Integer", str(tmp_path / "kfp" / "rows"),
        "--kfp-output", "copy", "Dataset", str(tmp_path / "kfp" / "copy" / "data"),
        "--kfp-output", "folder", "Artifact", str(tmp_path / "kfp" / "folder" / "data"),
        "--kfp-output", "mean", "Float", str(tmp_path / "kfp" / "mean"),
    ]  # fmt: skip


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "upstream" / "data"  # as KFP names artifact files: no suffix
    path.parent.mkdir()
    path.write_text("x,y\n1,a\n2,b\n6,c\n")
    return path


def test_parameters_inputs_and_outputs_travel_as_kfp_places_them(
    tmp_path: Path, table: Path
) -> None:
    result = job(
        tmp_path, "--kfp-input", "table", "Dataset", str(table),
        "--kfp-parameter", "scale", "Float", "2", "--kfp-parameter", "tags", "JsonArray",
        '["it\'s", "\\"q\\""]', *outputs(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    produced = tmp_path / "kfp"
    assert (produced / "rows").read_text() == "3"
    assert (produced / "mean").read_text() == "6.0"  # (1 + 2 + 6) / 3 * 2
    import pandas as pd

    assert pd.read_parquet(produced / "copy" / "data")["x"].tolist() == [1, 2, 6]
    assert (produced / "folder" / "data" / "a.txt").read_text() == "A"
    assert (produced / "folder" / "data" / "sub" / "b.txt").read_text() == 'it\'s,"q"'
    assert not (tmp_path / "data").exists()  # no store asked for: a scratch one, removed


def test_with_a_store_the_status_and_lineage_are_kept(tmp_path: Path, table: Path) -> None:
    store = tmp_path / "store"
    result = job(
        tmp_path, "--store", str(store), "--project", "demo", "--run-id", "r1",
        "--kfp-input", "table", "Dataset", str(table), *outputs(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads((store / "runs" / "demo" / "r1.json").read_text())
    assert status["state"] == "COMPLETED" and status["results"]["rows"] == 3
    assert status["inputs"]["table"].startswith("store://demo/dataitem/table/kfp.table:")
    assert status["consumed"] == [status["inputs"]["table"]]
    assert set(status["outputs"]) == {"copy", "folder"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--kfp-parameter", "scale", "Integer", "1.5"], 2,
         "--kfp-parameter scale: Integer: '1.5' is not a whole number"),
        (["--kfp-parameter", "tags", "JsonArray", "{}"], 2,
         "--kfp-parameter tags: JsonArray: expected a JSON array"),
        (["--kfp-parameter", "scale", "Decimal", "1"], 2,
         "--kfp-parameter scale: type 'Decimal' is not one of Integer, Float, String, Boolean,"
         " JsonObject, JsonArray"),
        (["--kfp-input", "table", "Dataset", "/nowhere/data"], 2,
         "--kfp-input table: /nowhere/data does not exist"),
        (["--kfp-output", "nothing", "String", "out"], 1,
         "--kfp-output nothing: the run has no result 'nothing' (it has: rows, mean)"),
        (["--kfp-output", "copy", "Model", "out"], 1,
         "--kfp-output copy: the run made a dataitem, the component declares a Model (model)"),
    ],
)  # fmt: skip
def test_a_broken_contract_names_the_argument(
    tmp_path: Path, table: Path, args: list[str], code: int, message: str
) -> None:
    given = ["--kfp-input", "table", "Dataset", str(table)] if "--kfp-input" not in args else []
    result = job(tmp_path, *given, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code == 2:  # before the run: one line, no status
        assert result.stderr == f"fn-wrapper job: error: {message}\n"
        return
    summary = json.loads(result.stdout)  # the run failed: its status says why
    assert (summary["state"], summary["message"]) == ("ERROR", message)
    assert summary["outputs"] == {}  # what it made is not kept

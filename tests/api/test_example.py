"""examples/etl: DigitalHub's ETL tutorial code, with `import wrapper as dh`, run by a user
from a fresh folder on a fresh default store."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from wrapper.entities.project import Project
from wrapper.entities.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def test_the_etl_example_runs_from_a_fresh_folder(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ.update(XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    script = ROOT / "examples" / "etl" / "run_etl.py"
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environ, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert (answer["page"], answer["size"], answer["total"]) == (1, 5, 6)
    assert [row["Nome via"] for row in answer["data"]] == ["VIA MASSARENTI"]
    store = open_store(str(tmp_path / "data" / "fn-wrapper" / "store"))
    project = Project("demo-etl", store)
    names = {f.name for f in project.list_functions()}
    assert names == {"download-data", "process-spire", "signal-api"}
    assert len(project.get_dataitem("dataset-spire").as_df()) == 6
    assert {run.status.state for run in project.list_runs()} == {"COMPLETED"}

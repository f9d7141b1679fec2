"""Functions written for DigitalHub's python runtime, unedited (`from digitalhub_runtime_python
import handler`), run as jobs by real `fn-wrapper job` subprocesses, on the local store and on
S3 (moto's server): packages of DigitalHub's names that raise on import are on their path,
so the doors are shown never to import the real ones (DESIGN §5; DigitalHub 0.15's
`utils/outputs.py` is the reference for the outputs)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas
import pytest

from tests.digitalhub_fakes import on_path, raising_packages
from wrapper.entities.project import Project
from wrapper.entities.store import open_store
from wrapper.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]

SENSORS = "sensor;street;hour;count\nS1;Main St;0;12\nS1;Main St;1;7\nS2;Oak Ave;0;3\n"

DOWNLOAD = """
from digitalhub_runtime_python import handler


@handler(outputs=["dataset"])
def downloader(url):
    return url.as_df(file_format="csv", sep=";")
"""

PROCESS = """
from digitalhub_runtime_python import handler


@handler(outputs=["dataset-sensors"])
def process(project, di):
    frame = di.as_df()
    return frame.groupby("sensor").first().reset_index()[["sensor", "street"]]
"""


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    return raising_packages(tmp_path / "fakes")


def start_job(store: str, fakes: Path, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """`fn-wrapper job --store STORE ARGS…` started with the raising packages on its path."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ["PYTHONPATH"] = on_path(fakes, ROOT)
    command = [sys.executable, "-m", "wrapper", "job", "--store", store, *args]
    pipe = subprocess.PIPE
    return subprocess.Popen(command, cwd=cwd, env=environ, stdout=pipe, stderr=pipe)


def job(store: str, fakes: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """A job run to its end."""
    process = start_job(store, fakes, cwd, *args)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def status_of(result: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert result.stdout, result.stderr.decode()
    return json.loads(result.stdout.decode().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_etl_jobs_run_unedited(
    tmp_path: Path, store_uri: str, fakes: Path, server: str
) -> None:
    (tmp_path / "www" / "sensors").write_text(SENSORS)  # no suffix: csv told by file_format
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "download_data.py").write_text(DOWNLOAD)
    (tmp_path / "src" / "process_sensors.py").write_text(PROCESS)
    project = Project("demo", open_store(store_uri))
    url = project.new_dataitem(name="url-data-item", kind="table", path=f"{server}/sensors")

    collected = job(
        store_uri, fakes, tmp_path, "--project", "demo", "--code-src", "src/download_data.py",
        "--handler", "downloader", "--inputs", json.dumps({"url": url.key}),
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr.decode()
    dataset = status_of(collected)["outputs"]["dataset"]
    assert dataset.startswith("store://demo/dataitem/table/dataset:")
    assert project.get_dataitem(dataset).filename == "dataset.parquet"  # DigitalHub's name

    processed = job(
        store_uri, fakes, tmp_path, "--project", "demo", "--code-src", "src/process_sensors.py",
        "--handler", "process", "--inputs", json.dumps({"di": dataset}),
    )  # fmt: skip
    assert processed.returncode == 0, processed.stderr.decode()
    sensors = project.get_dataitem(status_of(processed)["outputs"]["dataset-sensors"])
    assert sensors.as_df().to_dict("records") == [
        {"sensor": "S1", "street": "Main St"},
        {"sensor": "S2", "street": "Oak Ave"},
    ]
    run = project.get_run(status_of(processed)["id"])
    assert run.inputs(as_dict=True)["di"]["key"] == dataset
    assert run.output("dataset-sensors").key == sensors.key


OUTPUTS = """
from pathlib import Path

import pandas as pd
from digitalhub_runtime_python import handler


@handler(outputs=[
    "table", "count", "raw", "params", "report", "notes-again",
    {"name": "weights", "kind": "sklearn", "spec_kwargs": {"algorithm": "LogisticRegression"}},
    {"name": "sample", "kind": "table"},
    "not-returned",
])
def main(project):
    Path("notes.txt").write_text("n")
    notes = project.log_artifact("notes", "artifact", source="notes.txt")
    Path("report.txt").write_text("r")
    Path("weights.pkl").write_bytes(b"w")
    Path("sample.csv").write_text("a,b\\n1,2\\n")
    frame = pd.DataFrame({"x": [1, 2]})
    return frame, 3, b"raw", {"lr": 0.1}, Path("report.txt"), notes, "weights.pkl", "sample.csv"
"""


def test_returned_values_are_kept_as_digitalhub_maps_them(
    tmp_path: Path, store_uri: str, fakes: Path
) -> None:
    (tmp_path / "outputs.py").write_text(OUTPUTS)
    result = job(store_uri, fakes, tmp_path, "--code-src", "outputs.py", "--handler", "main")
    assert result.returncode == 0, result.stderr.decode()
    status = status_of(result)
    assert status["results"] == {"count": 3, "raw": "b'raw'"}  # bytes: as DigitalHub writes them
    outputs = status["outputs"]
    assert sorted(outputs) == [
        "notes", "notes-again", "params", "report", "sample", "table", "weights"
    ]  # fmt: skip  # the logged `notes` merged in; `not-returned` is not used
    assert outputs["notes-again"] == outputs["notes"]
    assert "declares 9 output(s) and returned 8 value(s)" in result.stderr.decode()
    project = Project("default", open_store(store_uri))
    assert project.get_dataitem(outputs["table"]).as_df()["x"].tolist() == [1, 2]
    with project.get_artifact(outputs["params"]).open() as stream:
        assert pickle.load(stream) == {"lr": 0.1}  # a dict is pickled, as DigitalHub does
    assert project.get_artifact(outputs["params"]).filename == "params.pickle"
    assert Path(project.get_artifact(outputs["report"]).as_file()).read_text() == "r"
    weights = project.get_model(outputs["weights"])
    assert (weights.kind, weights.spec.algorithm, weights.filename) == (
        "sklearn", "LogisticRegression", "weights.pkl"
    )  # fmt: skip
    sample = project.get_dataitem(outputs["sample"])
    assert sample.kind == "table" and sample.as_df().to_dict("list") == {"a": [1], "b": [2]}
    assert sorted(project.get_run(status["id"]).produced) == sorted(set(outputs.values()))


TRAIN = """
import numpy as np
from sklearn.linear_model import LogisticRegression
from digitalhub_runtime_python import handler


@handler(outputs=["model"])
def train(di):
    frame = di.as_df()
    model = LogisticRegression().fit(frame[["x"]].to_numpy(), frame["y"].to_numpy())
    return model
"""


def test_a_returned_model_object_is_kept_as_a_pickled_artifact(
    tmp_path: Path, store_uri: str, fakes: Path
) -> None:
    project = Project("default", open_store(store_uri))
    frame = pandas.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [0, 0, 0, 1, 1, 1]})
    data = project.log_dataitem("points", "table", data=frame)
    (tmp_path / "train.py").write_text(TRAIN)
    result = job(
        store_uri, fakes, tmp_path, "--code-src", "train.py", "--handler", "train",
        "--inputs", json.dumps({"di": data.key}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    model = project.get_artifact(status_of(result)["outputs"]["model"])
    assert (model.kind, model.filename) == ("artifact", "model.pickle")
    with open(model.as_file(), "rb") as stream:
        estimator = pickle.load(stream)
    assert estimator.predict([[0.5], [4.5]]).tolist() == [0, 1]


FAILS_TO_KEEP = """
from pathlib import Path

import pandas as pd
from digitalhub_runtime_python import handler


@handler(outputs=["table", "raw"])
def main(project, rows):
    project.log_artifact("notes", "artifact", data=b"kept even when the run fails")
    # the table is kept first; then /proc/self/mem cannot be read (EIO): the run fails
    return pd.DataFrame({"x": list(range(rows))}), Path("/proc/self/mem")
"""


def test_a_run_that_fails_keeping_its_return_leaves_none_of_it(
    tmp_path: Path, store_uri: str, fakes: Path
) -> None:
    (tmp_path / "f.py").write_text(FAILS_TO_KEEP)
    store = open_store(store_uri)
    first = Project("default", store).log_dataitem(
        "table", "table", data=pandas.DataFrame({"x": [0]})
    )
    result = job(
        store_uri, fakes, tmp_path, "--code-src", "f.py", "--handler", "main",
        "--parameters", '{"rows": 5}',
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.HANDLER_FAILED, stderr
    status = status_of(result)
    assert status["state"] == "ERROR" and status["message"].startswith("output 'raw'")
    assert [r.id for r in store.versions("default", "dataitem", "table")] == [first.id]
    project = Project("default", store)
    assert project.get_dataitem("table").as_df()["x"].tolist() == [0]  # the latest, as before
    notes = project.get_artifact("notes")  # logged by the handler: kept, and an output
    assert status["outputs"] == {"notes": notes.key}
    assert store.get_run("default", status["id"])["produced"] == [notes.key]


USES_DOWNLOAD = """
import time
from pathlib import Path


def main(di):
    path = di.download()  # no destination: the run's own folder, never the working folder
    Path(path).write_text(Path(path).read_text() + "changed by this run")
    time.sleep(0.5)  # both runs hold their file at once
    return path, Path(path).read_text()
"""


def test_two_runs_in_one_working_folder_download_without_colliding(
    tmp_path: Path, store_uri: str, fakes: Path
) -> None:
    project = Project("default", open_store(store_uri))
    (tmp_path / "rows.csv").write_text("a\n1\n")
    data = project.log_dataitem("rows", "table", source=tmp_path / "rows.csv")
    work = tmp_path / "work"
    work.mkdir()
    (work / "d.py").write_text(USES_DOWNLOAD)
    arguments = (
        "--code-src",
        "d.py",
        "--handler",
        "main",
        "--inputs",
        json.dumps({"di": data.key}),
    )
    runs = [start_job(store_uri, fakes, work, *arguments) for _ in range(2)]
    answers = [(run.wait(120), run.communicate()) for run in runs]
    assert [code for code, _ in answers] == [0, 0], [err.decode() for _, (_, err) in answers]
    results = [json.loads(out.decode().splitlines()[-1])["results"] for _, (out, _) in answers]
    paths = [Path(r["output_0"]) for r in results]
    assert paths[0] != paths[1] and all(p.name == "rows.csv" for p in paths)
    assert all(p.parent.name == "dataitem" for p in paths)
    assert [r["output_1"] for r in results] == ["a\n1\nchanged by this run"] * 2
    assert sorted(p.name for p in work.iterdir()) == ["d.py"]  # nothing in the working folder
    assert not any(p.exists() for p in paths)  # the runs' folders went with them


@pytest.mark.parametrize(
    "code",
    [
        "def h(context, event):\n    return event.body['x'] * 2",
        "def h(ctx, evt):\n    return evt.body['x'] * 2",
        "def h(event, project):\n    return event.body['x'] * 2",
    ],
)
def test_a_handler_of_runtime_arguments_gets_the_parameters_in_its_event(
    tmp_path: Path, store_root: Path, fakes: Path, code: str
) -> None:
    (tmp_path / "n.py").write_text(code + "\n")
    result = job(
        str(store_root), fakes, tmp_path, "--code-src", "n.py", "--handler", "h",
        "--parameters", '{"x": 21}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert status_of(result)["results"] == {"output_0": 42}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def h(context, event, scale):\n    return scale", "'scale' get no value"),
        ("def h(context):\n    return 1", "handler does not accept 'scal'"),
        ("def h(context, event):\n    return 1", "handler does not accept 'data'"),
    ],
)
def test_other_handlers_keep_the_load_time_check(
    tmp_path: Path, store_root: Path, fakes: Path, code: str, message: str
) -> None:
    (tmp_path / "n.py").write_text(code + "\n")
    project = Project("default", open_store(str(store_root)))
    data = project.log_artifact("data", data=b"1")
    extra = ("--inputs", json.dumps({"data": data.key})) if "'data'" in message else ()
    result = job(
        str(store_root), fakes, tmp_path, "--code-src", "n.py", "--handler", "h",
        "--parameters", '{"scal": 2}', *extra,
    )  # fmt: skip
    assert result.returncode == ExitCode.BAD_INPUT
    assert message in result.stderr.decode()


READS_ITS_RUN = """
import os


def main(project, run):
    here = project.get_run(os.environ["RUN_ID"])
    run.log_metric("seen", 1)
    return here.id == run.id, here.status.state, project.list_runs(state="RUNNING")[0].id
"""


def test_the_handler_reads_its_own_run_by_run_id(
    tmp_path: Path, store_uri: str, fakes: Path
) -> None:
    (tmp_path / "r.py").write_text(READS_ITS_RUN)
    result = job(store_uri, fakes, tmp_path, "--code-src", "r.py", "--handler", "main")
    assert result.returncode == 0, result.stderr.decode()
    status = status_of(result)
    assert status["results"] == {"output_0": True, "output_1": "RUNNING", "output_2": status["id"]}

"""`fn-wrapper job` end to end, as real subprocesses, on the real local store and on a real
S3-protocol server (moto's, on 127.0.0.1) (DESIGN §5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.moto_s3 import moto_server, point_aws_at
from wrapper.entities.project import Project
from wrapper.entities.store import open_store
from wrapper.errors import ExitCode

PYTHON_TRACEBACK = "Traceback (most recent call last)"

TRAIN = """
from pathlib import Path
from wrapper import handler

@handler(outputs=["scaled", "rows", "blob", "report"])
def train(project, run, table, notes, model, factor: int = 2):
    frame = table.as_df()
    frame["b"] = frame["b"] * factor
    text = notes.open().read()
    with open(model.as_file(), "rb") as weights:
        weights = weights.read()
    report = Path("report.txt")
    report.write_text(f"{run.id} {len(frame)} {project.name}")
    return frame, len(frame), text.upper() + weights, report
"""

DIGITALHUB = """
from wrapper import handler

def init_context(context, dataitem):
    context.frame = context.project.get_dataitem(dataitem).as_df(sep=";")

@handler(outputs=["total"])
def main(context):
    return int(context.frame["x"].sum())
"""


def job(
    *args: str, cwd: Path, store: Path | str, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(command(store, *args), cwd=cwd, capture_output=True, timeout=timeout)


def command(store: Path | str, *args: str) -> list[str]:
    """`fn-wrapper job --store STORE ARGS...` as this interpreter runs it."""
    return [sys.executable, "-m", "wrapper", "job", "--store", str(store), *args]


def summary(result: subprocess.CompletedProcess) -> dict[str, Any]:
    return json.loads(result.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[tuple[str, Any]]:
    with moto_server() as running:
        yield running


@pytest.fixture(params=["local", "s3"])
def store_uri(
    request: pytest.FixtureRequest,
    store_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """The local store, or a fresh bucket on moto's server (the job inherits the variables)."""
    if request.param == "local":
        return str(store_root)
    url, client = request.getfixturevalue("s3_server")
    point_aws_at(url, monkeypatch, tmp_path)
    bucket = f"jobs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/runs"


@pytest.fixture
def inputs(tmp_path: Path, store_uri: str) -> dict[str, str]:
    """A CSV dataitem, a text artifact and a model, registered in the store."""
    (tmp_path / "table.csv").write_text("a,b\n1,10\n2,20\n3,30\n")
    (tmp_path / "notes.txt").write_text("notes ")
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01weights")
    project = Project("demo", open_store(store_uri))
    return {
        "table": project.log_dataitem("table", source=tmp_path / "table.csv").key,
        "notes": project.log_artifact("notes", source=tmp_path / "notes.txt").key,
        "model": project.log_model("model", source=tmp_path / "weights.bin", framework="numpy").key,
    }


def test_a_job_reads_its_inputs_and_keeps_its_outputs_with_lineage(
    tmp_path: Path, store_uri: str, inputs: dict[str, str]
) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "train.py", "--handler", "train:train", "--project", "demo",
        "--inputs", json.dumps(inputs), "--parameters", '{"factor": 3}',
        "--status-file", str(status_file),
        cwd=tmp_path, store=store_uri,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    line = summary(result)
    assert line["state"] == "COMPLETED" and line["results"] == {"rows": 3}
    status = json.loads(status_file.read_text())
    assert status["state"] == "COMPLETED" and status["inputs"] == inputs
    assert sorted(status["consumed"]) == sorted(inputs.values())
    assert sorted(status["produced"]) == sorted(status["outputs"].values())

    store = open_store(store_uri)
    assert store.get_run("demo", status["id"]) == status
    project = Project("demo", store)
    outputs = status["outputs"]
    frame = project.get_dataitem(outputs["scaled"]).as_df()
    assert frame["b"].tolist() == [30, 60, 90]
    blob = project.get_artifact(outputs["blob"])
    with blob.open() as stream:
        assert stream.read() == b"NOTES \x00\x01weights"
    report = project.get_artifact(outputs["report"])
    assert Path(report.as_file()).read_text() == f"{status['id']} 3 demo"
    assert report.record.run == status["id"]


def test_a_digitalhub_function_runs_with_only_its_import_changed(
    tmp_path: Path, store_root: Path
) -> None:
    (tmp_path / "x.csv").write_text("x;y\n1;a\n2;b\n")
    Project("default", open_store(str(store_root))).log_dataitem("xs", source=tmp_path / "x.csv")
    (tmp_path / "dh.py").write_text(DIGITALHUB)
    result = job(
        "--code-src", "dh.py", "--handler", "dh:main", "--init-function", "init_context",
        "--init-parameters", '{"dataitem": "xs"}',
        cwd=tmp_path, store=store_root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert summary(result)["results"] == {"total": 3}


@pytest.mark.parametrize(
    ("code", "extra", "exit_code", "message"),
    [
        ("def h(): raise ValueError('bad row 7')", (), ExitCode.HANDLER_FAILED,
         "the handler raised ValueError: bad row 7"),
        ("def h(data): return 1", ("--inputs", '{"data": "store://default/dataitem/table/none"}'),
         ExitCode.BAD_INPUT, "inputs.data: 'store://default/dataitem/table/none': no dataitem"),
        ("def h(data): return 1", ("--inputs", '{"data": "table1"}'),
         ExitCode.BAD_INPUT, "inputs.data: 'table1' is not an entity key"),
        ("def h(): return 1", ("--parameters", '{"speed": 3}'),
         ExitCode.BAD_INPUT, "handler does not accept 'speed'"),
        ("def h(needed): return 1", (), ExitCode.BAD_INPUT, "'needed' get no value"),
        ("def init(context): raise OSError('no gpu')\ndef h(): return 1",
         ("--init-function", "init"), ExitCode.INIT_FAILED, "init function raised OSError: no gpu"),
        ("import nowhere_to_be_found\ndef h(): return 1", (), ExitCode.SOURCE_FAILED,
         "nowhere_to_be_found"),
        ("def h(): return object()", (), ExitCode.HANDLER_FAILED,
         "output 'output_0': a object cannot be kept"),
        ("from wrapper import handler\n@handler(outputs=['a', 'b'])\ndef h(): return 1", (),
         ExitCode.HANDLER_FAILED, "declares 2 outputs (a, b) but returned 1 value(s)"),
    ],
)  # fmt: skip
def test_each_error_has_its_exit_code_state_and_message(
    tmp_path: Path,
    store_root: Path,
    code: str,
    extra: tuple[str, ...],
    exit_code: int,
    message: str,
) -> None:
    (tmp_path / "f.py").write_text(code + "\n")
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "f.py", "--handler", "f:h", "--status-file", str(status_file), *extra,
        cwd=tmp_path, store=store_root,
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == exit_code, stderr
    assert message in stderr
    if status_file.exists():  # errors found before the run started write no status
        status = json.loads(status_file.read_text())
        assert status["state"] == "ERROR" and message in status["message"]
    else:
        assert exit_code == ExitCode.BAD_INPUT
    assert PYTHON_TRACEBACK not in stderr  # the user's frames only, as "Traceback (user code)"


def test_sigterm_stops_the_handler_and_records_stopped(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\ndef h():\n    print('started', flush=True)\n    time.sleep(60)\n"
    )
    status_file = tmp_path / "status.json"
    job_command = command(
        store_root, "--code-src", "slow.py", "--handler", "slow:h",
        "--status-file", str(status_file),
    )  # fmt: skip
    process = subprocess.Popen(job_command, cwd=tmp_path, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"started\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == ExitCode.STOPPED
    process.stdout.close()
    status = json.loads(status_file.read_text())
    assert status["state"] == "STOPPED" and status["finished"]


BIG_OUTPUT = """
import time
def h():
    print('writing', flush=True)
    return b'x' * (256 * 1024 * 1024)
"""


def test_a_job_killed_while_writing_leaves_no_partial_output_or_status(
    tmp_path: Path, store_root: Path
) -> None:
    (tmp_path / "big.py").write_text(BIG_OUTPUT)
    status_file = tmp_path / "status.json"
    job_command = command(
        store_root, "--code-src", "big.py", "--handler", "big:h",
        "--status-file", str(status_file),
    )  # fmt: skip
    process = subprocess.Popen(job_command, cwd=tmp_path, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"writing\n"
    partial = store_root / "tmp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(partial.glob("*")):
        time.sleep(0.005)  # until the output's content is being written
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    process.stdout.close()
    store = open_store(str(store_root))
    assert store.versions("default", "artifact") == []
    status = json.loads(status_file.read_text())  # whole: the RUNNING document
    assert status["state"] == "RUNNING"


def test_eight_jobs_write_to_one_store_at_once(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "w.py").write_text("def h(run):\n    return run.id.encode() * 1000, 7\n")
    job_command = command(store_root, "--code-src", "w.py", "--handler", "w:h")
    processes = [
        subprocess.Popen(job_command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    results = [(p.wait(120), p.communicate()) for p in processes]
    assert [code for code, _ in results] == [0] * 8, [err.decode() for _, (_, err) in results]
    store = open_store(str(store_root))
    outputs = store.versions("default", "artifact", "output_0")
    assert len(outputs) == 8
    project = Project("default", store)
    for record in outputs:
        with project.get_artifact(str(record.key)).open() as stream:
            assert stream.read() == record.run.encode() * 1000  # type: ignore[union-attr]


def test_the_store_command_registers_and_reads_back(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "data.csv").write_text("a\n1\n")
    fn_wrapper = [sys.executable, "-m", "wrapper", "store"]
    put = subprocess.run(
        [*fn_wrapper, "put", "data.csv", "--store", str(store_root), "--label", "team=x"],
        cwd=tmp_path, capture_output=True, check=True,
    )  # fmt: skip
    key = put.stdout.decode().strip()
    assert key.startswith("store://default/dataitem/table/data:")
    listed = subprocess.run(
        [*fn_wrapper, "ls", "--store", str(store_root)], capture_output=True, check=True
    )
    assert listed.stdout.decode().split("\t")[0] == key
    target = tmp_path / "copy.csv"
    subprocess.run(
        [*fn_wrapper, "get", key, "--store", str(store_root), "--output", str(target)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert target.read_text() == "a\n1\n"
    missing = subprocess.run(
        [*fn_wrapper, "get", "nope", "--store", str(store_root)], capture_output=True
    )
    assert missing.returncode == ExitCode.BAD_INPUT
    assert "'nope' is a name: say its --type" in missing.stderr.decode()
    assert os.listdir(store_root)


def test_the_project_comes_from_the_flag_else_the_spec(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "f.py").write_text("def h(project):\n    return project.name\n")
    spec = {
        "function": {
            "name": "f", "labels": ["library"], "project": "lib", "python_version": "PYTHON3_11",
            "code_src": "f.py", "handler": "f:h",
        }
    }  # fmt: skip
    document = tmp_path / "spec.json"
    document.write_text(json.dumps(spec))
    from_spec = job("--spec", str(document), cwd=tmp_path, store=store_root)
    assert summary(from_spec)["results"] == {"output_0": "lib"}, from_spec.stderr.decode()
    from_flag = job("--spec", str(document), "--project", "ops", cwd=tmp_path, store=store_root)
    assert summary(from_flag)["results"] == {"output_0": "ops"}

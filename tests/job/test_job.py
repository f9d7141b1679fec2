"""`fn-wrapper job` end to end, as real subprocesses, on the real local store and on a real
S3-protocol server (moto's, on 127.0.0.1) (DESIGN §5)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.moto_s3 import point_aws_at
from wrapper.entities.project import Project
from wrapper.entities.store import open_store
from wrapper.errors import ExitCode
from wrapper.job.runner import Stopped, _Stop
from wrapper.job.status import json_safe

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
from digitalhub_runtime_python import handler

def init_context(context, dataitem):
    assert context.run.status.state == "RUNNING"
    context.frame = context.project.get_dataitem(dataitem).as_df(engine="pandas", sep=";")

@handler(outputs=["total", "trigger", "body"])
def main(context, run, event, scale):
    assert context.run is run and run.status.state == "RUNNING"
    same = context.project.get_dataitem("xs").as_df(engine="pandas", sep=";")  # by name
    total = int(context.frame["x"].sum() + same["x"].sum()) * scale
    run.log_metric("accuracy", 0.5)
    run.log_metric("accuracy", 0.75)
    run.log_metric("loss", float("nan"), single_value=True)
    return total, event.trigger.kind, event.body
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
    assert line["state"] == "COMPLETED"
    assert line["results"] == {"rows": 3, "blob": str(b"NOTES \x00\x01weights")}  # bytes: a
    # result, written as DigitalHub's JSON encoder writes them (their str())
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
    report = project.get_artifact(outputs["report"])
    assert Path(report.as_file()).read_text() == f"{status['id']} 3 demo"
    assert report.record.run == status["id"]


def test_a_digitalhub_function_runs_with_its_own_import(tmp_path: Path, store_uri: str) -> None:
    (tmp_path / "x.csv").write_text("x;y\n1;a\n2;b\n")
    project = Project("default", open_store(store_uri))
    key = project.log_dataitem("xs", source=tmp_path / "x.csv").key
    (tmp_path / "dh.py").write_text(DIGITALHUB)
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "dh.py", "--handler", "dh:main", "--init-function", "init_context",
        "--init-parameters", json.dumps({"dataitem": key}), "--parameters", '{"scale": 10}',
        "--status-file", str(status_file),
        cwd=tmp_path, store=store_uri,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert summary(result)["results"] == {"total": 60, "trigger": "job"}
    status = json.loads(status_file.read_text())  # valid JSON: NaN is written as "NaN"
    body = project.get_artifact(status["outputs"]["body"])  # a dict: pickled, as DigitalHub does
    with body.open() as stream:
        assert pickle.load(stream) == {"scale": 10}
    assert status["metrics"] == {"accuracy": [0.5, 0.75], "loss": "NaN"}
    assert status["consumed"] == [key]
    assert open_store(store_uri).get_run("default", status["id"]) == status


@pytest.mark.parametrize(
    ("code", "extra", "exit_code", "message"),
    [
        ("def h(): raise ValueError('bad row 7')", (), ExitCode.HANDLER_FAILED,
         "the handler raised ValueError: bad row 7"),
        ("import sys\ndef h(): sys.exit(0)", (), ExitCode.HANDLER_FAILED,
         "the handler raised SystemExit: it called sys.exit(0) instead of returning"),
        ("def h(): raise KeyboardInterrupt", (), ExitCode.HANDLER_FAILED,
         "the handler raised KeyboardInterrupt"),
        ("def h(): raise GeneratorExit", (), ExitCode.HANDLER_FAILED,
         "the handler raised GeneratorExit"),
        ("class Own(BaseException): pass\ndef h(): raise Own('mine')", (),
         ExitCode.HANDLER_FAILED, "the handler raised Own: mine"),
        ("class Own(BaseException): pass\nasync def h(): raise Own('async')", (),
         ExitCode.HANDLER_FAILED, "the handler raised Own: async"),
        ("async def later(): raise ValueError('awaited')\ndef h(): return later()", (),
         ExitCode.HANDLER_FAILED, "the handler raised ValueError: awaited"),
        ("def h(ctx, event): raise ValueError(sorted(event.body))",
         ("--parameters", '{"speed": 3}'), ExitCode.HANDLER_FAILED,
         "the handler raised ValueError: ['speed']"),
        ("import pandas\ndef h(): return pandas.DataFrame({'a': [1, 'x']})", (),
         ExitCode.HANDLER_FAILED, "output 'output_0': a DataFrame cannot be kept: ArrowInvalid:"),
        ("def h(data): return 1", ("--inputs", '{"data": "store://default/dataitem/table/none"}'),
         ExitCode.BAD_INPUT, "inputs.data: 'store://default/dataitem/table/none': no dataitem"),
        ("def h(data): return 1", ("--inputs", '{"data": "table1"}'),
         ExitCode.BAD_INPUT, "inputs.data: 'table1' is not an entity key"),
        ("def h(): return 1", ("--parameters", '{"speed": 3}'),
         ExitCode.BAD_INPUT, "handler does not accept 'speed'"),
        ("def h(needed): return 1", (), ExitCode.BAD_INPUT, "'needed' get no value"),
        ("def h(data): return 1", ("--parameters", '{"data": 1}', "--inputs",
         '{"data": "store://default/dataitem/table/t"}'), ExitCode.BAD_INPUT,
         "inputs.data: 'data' is both an input and a parameter: give it once"),
        ("def h(project): return 1", ("--parameters", '{"project": "x"}'), ExitCode.BAD_INPUT,
         "parameters.project: 'project' is reserved for the runtime"),
        ("def h(**kw): return 1", ("--inputs", '{"run": "store://default/dataitem/table/t"}'),
         ExitCode.BAD_INPUT, "inputs.run: 'run' is reserved for the runtime"),
        ("from wrapper import handler\n@handler(outputs=['my data'])\n"
         "def h(): raise ValueError('ran')", (), ExitCode.BAD_INPUT,
         "@handler(outputs=...): output 0: name 'my data' is not a name"),
        ("def init(context): raise OSError('no gpu')\ndef h(): return 1",
         ("--init-function", "init"), ExitCode.INIT_FAILED, "init function raised OSError: no gpu"),
        ("import sys\ndef init(context): sys.exit(3)\ndef h(): return 1",
         ("--init-function", "init"), ExitCode.INIT_FAILED,
         "init function raised SystemExit"),
        ("class Own(BaseException): pass\ndef init(context): raise Own()\ndef h(): return 1",
         ("--init-function", "init"), ExitCode.INIT_FAILED, "init function raised Own"),
        ("import nowhere_to_be_found\ndef h(): return 1", (), ExitCode.SOURCE_FAILED,
         "nowhere_to_be_found"),
        ("def h(run):\n    run.log_metric('m', [1, {2}])\n    return 1", (),
         ExitCode.HANDLER_FAILED, "log_metric('m'): a set is not a metric value"),
        ("def h(): return (i for i in [1])", (), ExitCode.HANDLER_FAILED,
         "output 'output_0': a generator cannot be pickled (TypeError: "),
        ("from wrapper import handler\n@handler(outputs=[{'name': 'a', 'kind': 'csv'}])\n"
         "def h(): return 1", (), ExitCode.BAD_INPUT,
         "@handler(outputs=...): output a: kind 'csv' is not one of dataitem, table, "),
    ],
)  # fmt: skip
def test_each_error_has_its_exit_code_state_and_message(
    tmp_path: Path,
    store_uri: str,
    code: str,
    extra: tuple[str, ...],
    exit_code: int,
    message: str,
) -> None:
    (tmp_path / "f.py").write_text(code + "\n")
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "f.py", "--handler", "f:h", "--status-file", str(status_file), *extra,
        cwd=tmp_path, store=store_uri,
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == exit_code, stderr
    assert message in stderr
    assert PYTHON_TRACEBACK not in stderr  # the user's frames only, as "Traceback (user code)"
    # the run exists once the spec is valid: every error after that is a final ERROR status,
    # in the store and in the status file (only an invalid spec or flag writes none)
    status = json.loads(status_file.read_text())
    assert status["state"] == "ERROR" and message in status["message"] and status["finished"]
    assert summary(result)["state"] == "ERROR"
    assert open_store(store_uri).get_run("default", status["id"]) == status


def test_an_invalid_spec_writes_no_status(tmp_path: Path, store_root: Path) -> None:
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "f.py", "--python-version", "PYTHON2_7", "--status-file", str(status_file),
        cwd=tmp_path, store=store_root,
    )  # fmt: skip
    assert result.returncode == ExitCode.BAD_INPUT
    assert "python_version" in result.stderr.decode() and not status_file.exists()


BREAKS_THE_STORE = """
import shutil
from pathlib import Path

def h(root):
    shutil.rmtree(Path(root, "tmp"))
    Path(root, "tmp").write_text("not a folder")  # no content or run document can be written
    return {"lost": True}  # pickled into an artifact, as DigitalHub keeps a dict
"""


def test_a_store_that_fails_keeping_outputs_is_an_error_naming_the_output(
    tmp_path: Path, store_root: Path
) -> None:
    (tmp_path / "b.py").write_text(BREAKS_THE_STORE)
    status_file = tmp_path / "status.json"
    result = job(
        "--code-src", "b.py", "--handler", "b:h", "--status-file", str(status_file),
        "--parameters", json.dumps({"root": str(store_root)}),
        cwd=tmp_path, store=store_root,
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.HANDLER_FAILED, stderr
    assert "output 'output_0': store " in stderr and "cannot write" in stderr
    assert "the final status was not kept" in stderr and PYTHON_TRACEBACK not in stderr
    status = json.loads(status_file.read_text())  # the status file has it all the same
    assert status["state"] == "ERROR" and status["message"].startswith("output 'output_0': ")


def test_a_store_that_fails_before_the_run_is_exit_2(
    tmp_path: Path, s3_server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    point_aws_at(s3_server[0], monkeypatch, tmp_path)
    (tmp_path / "f.py").write_text("def h():\n    raise ValueError('ran')\n")
    status_file = tmp_path / "status.json"
    store = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x"
    result = job(
        "--code-src", "f.py", "--handler", "f:h", "--status-file", str(status_file),
        cwd=tmp_path, store=store,
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.BAD_INPUT, stderr
    assert f"S3 store: cannot write {store}/runs/default/" in stderr and "no such bucket" in stderr
    assert "ran" not in stderr and PYTHON_TRACEBACK not in stderr
    status = json.loads(status_file.read_text())
    assert status["state"] == "ERROR" and "no such bucket" in status["message"]


def test_a_status_file_left_partial_by_a_killed_run_is_removed(
    tmp_path: Path, store_root: Path
) -> None:
    (tmp_path / "f.py").write_text("def h():\n    return 1\n")
    left = tmp_path / ".status.json.4242.0badcafe.part"
    left.write_text('{"state": "RUNN')
    result = job(
        "--code-src", "f.py", "--handler", "f:h", "--status-file", "status.json",
        cwd=tmp_path, store=store_root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert not left.exists() and json.loads((tmp_path / "status.json").read_text())["results"]


@pytest.mark.parametrize(
    ("number", "exit_code"), [(signal.SIGTERM, ExitCode.STOPPED), (signal.SIGINT, 130)]
)
def test_a_signal_stops_the_handler_and_records_stopped(
    tmp_path: Path, store_uri: str, number: int, exit_code: int
) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\ndef h():\n    print('started', flush=True)\n    time.sleep(60)\n"
    )
    status_file = tmp_path / "status.json"
    job_command = command(
        store_uri, "--code-src", "slow.py", "--handler", "slow:h",
        "--status-file", str(status_file),
    )  # fmt: skip
    process = subprocess.Popen(job_command, cwd=tmp_path, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"started\n"
    process.send_signal(number)
    assert process.wait(30) == exit_code
    process.stdout.close()
    status = json.loads(status_file.read_text())
    name = signal.Signals(number).name
    assert status["state"] == "STOPPED" and status["message"] == f"stopped by {name}"
    assert status["finished"] and open_store(store_uri).get_run("default", status["id"]) == status


BIG_OUTPUT = """
from pathlib import Path

def h(size):
    big = Path("big.bin")
    with big.open("wb") as out:
        out.truncate(size)
    print('writing', flush=True)
    return big
"""


def partial_writes(store_uri: str) -> list[str]:
    """What a writer has begun and not finished: files in the local store's tmp/ and run
    folders, or the S3 store's unfinished multipart uploads."""
    if store_uri.startswith("s3://"):
        from wrapper.entities.s3store import s3_client

        uploads = s3_client().list_multipart_uploads(Bucket=store_uri[5:].split("/")[0])
        return [upload["Key"] for upload in uploads.get("Uploads", [])]
    root = Path(store_uri)
    return [str(p) for p in [*root.glob("tmp/*"), *root.glob("runs/*/.*")]]


def test_a_job_killed_while_writing_leaves_no_partial_output_or_status(
    tmp_path: Path, store_uri: str
) -> None:
    (tmp_path / "big.py").write_text(BIG_OUTPUT)
    status_file = tmp_path / "status.json"
    size = (64 if store_uri.startswith("s3://") else 256) * 1024 * 1024
    job_command = command(
        store_uri, "--code-src", "big.py", "--handler", "big:h",
        "--status-file", str(status_file), "--parameters", json.dumps({"size": size}),
    )  # fmt: skip
    process = subprocess.Popen(job_command, cwd=tmp_path, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"writing\n"
    deadline = time.monotonic() + 30
    while not partial_writes(store_uri) and process.poll() is None:
        assert time.monotonic() < deadline, "the output's content was never being written"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL  # killed mid-write, not finished before
    process.stdout.close()
    store = open_store(store_uri)
    assert store.versions("default", "artifact") == []
    status = json.loads(status_file.read_text())  # whole: the RUNNING document
    assert status["state"] == "RUNNING"
    assert store.get_run("default", status["id"]) == status
    assert not list(tmp_path.glob(".status.json.*"))
    if not store_uri.startswith("s3://"):
        assert [p.name for p in Path(store_uri, "runs", "default").iterdir()] == [
            f"{status['id']}.json"
        ]


def test_eight_jobs_write_to_one_store_at_once(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "w.py").write_text("def h(run):\n    return {'run': run.id * 1000}, 7\n")
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
            assert pickle.load(stream) == {"run": record.run * 1000}  # type: ignore[operator]


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


def test_the_store_command_keeps_a_model_folder(tmp_path: Path, store_root: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    fn_wrapper = [sys.executable, "-m", "wrapper", "store"]
    put = subprocess.run(
        [*fn_wrapper, "put", "model", "--type", "model", "--store", str(store_root)],
        cwd=tmp_path, capture_output=True,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr.decode()
    key = put.stdout.decode().strip()
    assert key.startswith("store://default/model/model/model:")
    subprocess.run(
        [*fn_wrapper, "get", key, "--store", str(store_root), "--output", str(tmp_path / "back")],
        capture_output=True, check=True,
    )  # fmt: skip
    assert (tmp_path / "back" / "config.json").read_text() == "{}"


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


def test_the_status_document_holds_any_value_as_json() -> None:
    import numpy  # installed with pandas, in the test extra

    value = {1: [numpy.int64(3), numpy.float64("nan"), (1.5, float("-inf"))], "s": {2, 3}.__class__}
    assert json_safe(value) == {"1": [3, "NaN", [1.5, "-Infinity"]], "s": "<class 'set'>"}
    assert json.loads(json.dumps(json_safe({"m": [numpy.bool_(True), None]}))) == {
        "m": [True, None]
    }


def test_a_second_signal_does_not_interrupt_the_first_ones_stop() -> None:
    stop = _Stop()
    with pytest.raises(Stopped) as first:
        stop(signal.SIGINT, None)
    assert first.value.code == 130 and first.value.name == "SIGINT"
    stop(signal.SIGTERM, None)  # ignored: the run is already stopping
    assert not stop.armed


RETRIED = """
from pathlib import Path
from wrapper import handler

@handler(outputs=["report"])
def h(marker):
    attempts = Path(marker)
    attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
    attempt = len(attempts.read_text())
    if attempt == 1:
        raise RuntimeError("the first attempt fails")
    report = Path("report.txt")
    report.write_text(f"attempt {attempt}")
    return report
"""


def test_a_retried_run_id_counts_its_attempts_and_never_reruns_a_completed_run(
    tmp_path: Path, store_uri: str
) -> None:
    (tmp_path / "r.py").write_text(RETRIED)
    marker = tmp_path / "attempts"
    args = (
        "--code-src",
        "r.py",
        "--handler",
        "r:h",
        "--parameters",
        json.dumps({"marker": str(marker)}),
    )
    store = open_store(store_uri)

    def attempt(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command(store_uri, *args), cwd=tmp_path, capture_output=True, timeout=60,
            env={**os.environ, "RUN_ID": "retried", **env},
        )  # fmt: skip

    first = attempt()
    assert first.returncode == ExitCode.HANDLER_FAILED
    assert store.get_run("default", "retried")["attempts"] == 1
    second = attempt()  # a Kubernetes Job's retry: the same RUN_ID
    assert second.returncode == ExitCode.COMPLETED, second.stderr.decode()
    status = store.get_run("default", "retried")
    assert status["state"] == "COMPLETED" and status["attempts"] == 2
    (earlier,) = status["earlier_attempts"]
    assert earlier["attempt"] == 1 and earlier["state"] == "ERROR"
    assert "the first attempt fails" in earlier["message"] and earlier["finished"]
    (report,) = store.versions("default", "artifact", "report")  # the failed attempt made none
    assert status["outputs"]["report"] == str(report.key)
    third = attempt()
    assert third.returncode == ExitCode.COMPLETED
    assert "has completed already: it is not run again" in third.stderr.decode()
    assert marker.read_text() == "xx" and store.get_run("default", "retried") == status


def test_a_killed_attempt_is_recorded_when_the_run_is_retried(
    tmp_path: Path, store_root: Path
) -> None:
    store = open_store(str(store_root))
    store.put_run(
        {"id": "killed", "project": "default", "state": "RUNNING", "started": "2026-12-01T00:00:00"}
    )
    (tmp_path / "f.py").write_text("def h():\n    return 7\n")
    result = job(
        "--code-src",
        "f.py",
        "--handler",
        "f:h",
        "--run-id",
        "killed",
        cwd=tmp_path,
        store=store_root,
    )
    assert result.returncode == ExitCode.COMPLETED, result.stderr.decode()
    status = store.get_run("default", "killed")
    assert status["attempts"] == 2 and status["results"] == {"output_0": 7}
    assert status["earlier_attempts"] == [
        {
            "attempt": 1,
            "state": "RUNNING",
            "started": "2026-12-01T00:00:00",
            "finished": None,
            "message": "ended without a final status: the process was killed",
        }
    ]

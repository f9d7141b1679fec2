"""The Python API (DESIGN §11) run as a function author runs it: projects and functions kept in
a real store, and each action through the real doors in child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import wrapper as dh
from wrapper.api.runs import RunFailed
from wrapper.entities.project import Project
from wrapper.errors import SpecError

CODE = """
import pandas as pd
from digitalhub_runtime_python import handler


@handler(outputs=["table", "rows"])
def make(n: int = 3):
    frame = pd.DataFrame({"x": list(range(n))})
    return frame, len(frame)


def fails():
    raise ValueError("no luck today")


def sleeps(flag):
    import pathlib, time

    pathlib.Path(flag).write_text("started")
    time.sleep(60)


def init_api(context, table):
    context.frame = context.project.get_dataitem(table).as_df()


def serve(context, event):
    return {"rows": len(context.frame), "page": event.fields.get("page"), "body": event.body}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text(CODE)
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("FN_WRAPPER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FN_WRAPPER_STORE", str(tmp_path / "store"))
    return dh.get_or_create_project("demo")


def new(project, name: str, **fields):
    fields = {"python_version": "PYTHON3_11", "code_src": "src/code.py", **fields}
    return project.new_function(name=name, kind="python", **fields)


def test_a_job_keeps_its_outputs_and_results_read_back_by_name(project) -> None:
    run = new(project, "maker", handler="make").run(action="job", parameters={"n": 4})
    assert run.exit_code == 0, run.logs()
    assert run.status.state == "COMPLETED" and run.status.function == "maker"
    assert run.results() == {"rows": 4} and run.result("rows") == 4
    table = run.output("table")
    assert table.key.startswith("store://demo/dataitem/table/table:")
    assert table.as_df()["x"].tolist() == [0, 1, 2, 3]
    assert run.outputs(as_key=True) == {"table": table.key}
    assert project.get_run(run.id).status.state == "COMPLETED"  # the same store as the CLI's


def test_a_failing_job_says_why_in_its_status(project) -> None:
    run = new(project, "bad", handler="fails").run("job")
    assert run.exit_code == 1
    assert run.status.state == "ERROR"
    assert run.status.message == "the handler raised ValueError: no luck today"
    assert "no luck today" in run.logs()


def test_wait_false_returns_at_once_and_wait_reads_the_end(project) -> None:
    run = new(project, "maker", handler="make").run("job", wait=False)
    assert run.wait(timeout=60).status.state == "COMPLETED"


def test_a_serve_run_is_invoked_over_http_and_stopped(project) -> None:
    new(project, "maker", handler="make").run("job", parameters={"n": 7})
    api = new(project, "api", handler="serve", init_function="init_api")
    with api.run(action="serve", init_parameters={"table": "table"}) as served:
        assert served.status.state == "RUNNING"
        got = served.invoke(params={"page": 2})  # GET: no data, no json
        assert got.status_code == 200 and got.json() == {"rows": 7, "page": "2", "body": ""}
        posted = served.invoke(json={"a": 1}, headers={"X-Request-Id": "r-1"})
        assert posted.json()["body"] == {"a": 1} and posted.headers["x-request-id"] == "r-1"
        with pytest.raises(SpecError, match="must start with the service URL"):
            served.invoke(url="http://elsewhere:1/")
        group = served.process.pid
    assert served.status.state == "STOPPED"
    with pytest.raises(ProcessLookupError):  # the master and its workers are gone
        os.killpg(group, 0)


def test_a_serve_that_cannot_start_raises_the_doors_message_and_exit_code(project) -> None:
    api = new(project, "api", handler="serve", init_function="init_api")
    with pytest.raises(RunFailed) as failed:
        api.run("serve", init_parameters={"table": "missing"})
    assert failed.value.exit_code == 4
    assert "no dataitem named 'missing' in project 'demo'" in failed.value.message


def test_a_build_writes_its_context_and_records_its_inputs(project, tmp_path: Path) -> None:
    maker = new(project, "maker", handler="make")
    build = maker.run("build", builder="none", parameters={"n": 2}, inputs={})
    assert build.status.state == "COMPLETED" and build.image is None
    assert (build.context / "function" / "code" / "code.py").read_text() == CODE
    kept = json.loads((build.context / "function" / "run.json").read_text())
    assert kept["function"]["handler"] == "make"
    assert (
        "ENV FN_WRAPPER_SPEC=/opt/function/run.json"
        in (build.context / "Containerfile").read_text()
    )
    assert build.summary["parameters"] == {"n": 2}
    assert maker.spec.get("image") is None  # nothing built: the function is as it was


def test_local_execution_false_renders_the_manifests(project) -> None:
    maker = new(project, "maker", handler="make").with_image("registry.local/demo/maker:1")
    rendered = maker.run("job", local_execution=False, resources={"cpu": "500m", "mem": "256Mi"})
    (manifest,) = rendered.files
    job = yaml.safe_load(manifest.read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["kind"] == "Job" and container["image"] == "registry.local/demo/maker:1"
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert rendered.apply == f"kubectl apply -f {rendered.manifests}"
    assert project.get_function("maker").spec["image"] == "registry.local/demo/maker:1"


def cli_error(*args: str) -> str:
    """The message the CLI prints for the same mistake."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    command = [sys.executable, "-m", "wrapper", "job", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)
    assert result.returncode == 2
    return result.stderr.strip().removeprefix("fn-wrapper job: error: ")


def test_bad_arguments_raise_the_clis_messages(project, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        new(project, "old", handler="make", python_version="PYTHON3_8")
    assert "function.python_version: 'PYTHON3_8' is not one of" in caught.value.message
    assert caught.value.message == cli_error(
        "--code-src", "src/code.py", "--name", "old", "--python-version", "PYTHON3_8"
    )
    maker = new(project, "maker", handler="make")
    with pytest.raises(SpecError) as caught:
        maker.run("job", resources={"cpu": "5 cores"})
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps({"function": dict(maker.spec), "task": {"resources": {"cpu": "5 cores"}}})
    )
    assert caught.value.message == cli_error("--spec", str(spec))
    with pytest.raises(SpecError, match=r"run\(action='deploy'\): expected one of job, serve"):
        maker.run("deploy")
    with pytest.raises(SpecError, match=r"run\(builder=…\): only the build action takes it"):
        maker.run("job", builder="none")


def test_functions_are_kept_by_name_and_version(project, tmp_path: Path) -> None:
    first = new(project, "maker", handler="make")
    second = new(project, "maker", handler="fails")
    assert first.key.startswith("store://demo/function/python/maker:")
    assert project.get_function("maker").id == second.id  # by name: the latest version
    assert project.get_function(first.key).spec["source"]["handler"] == "make"
    assert [f.id for f in project.get_function_versions("maker")] == [second.id, first.id]
    assert [f.name for f in project.list_functions()] == ["maker"]
    assert dh.get_function("maker", project="demo").id == second.id
    assert dh.get_project("demo").name == "demo"
    with pytest.raises(SpecError, match="holds nothing of project 'empty'"):
        dh.get_project("empty")


def test_a_relative_code_src_is_resolved_when_the_function_is_made(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maker = new(project, "maker", handler="make")
    assert maker.spec["source"]["code_src"] == str(tmp_path / "src" / "code.py")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert maker.run("job").status.state == "COMPLETED"


def test_api_arguments_outrank_twins_which_outrank_defaults(
    project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FN_WRAPPER_HANDLER", "fails")
    assert new(project, "given", handler="make").spec["source"]["handler"] == "make"
    from_twin = new(project, "twin")
    assert from_twin.spec["source"]["handler"] == "fails"
    assert from_twin.run("job").status.state == "ERROR"  # the twin chose the handler
    monkeypatch.setenv("FN_WRAPPER_CODE_SRC", "/nowhere.py")  # the child never reads it
    assert new(project, "given2", handler="make").run("job").status.state == "COMPLETED"


def test_a_function_key_is_no_job_input(project) -> None:
    maker = new(project, "maker", handler="make")
    run = new(project, "reader", handler="make").run("job", inputs={"n": maker.key})
    assert run.exit_code == 2 and run.status.state == "ERROR"
    assert run.status.message.endswith("is a function: not an entity with content")


def test_stop_ends_a_job_as_stopped(project, tmp_path: Path) -> None:
    flag = tmp_path / "started"
    run = new(project, "slow", handler="sleeps").run(
        "job", parameters={"flag": str(flag)}, wait=False
    )
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    run.stop()
    assert run.exit_code == 143 and run.status.state == "STOPPED"
    assert run.status.message == "stopped by SIGTERM"

"""A serve function written for DigitalHub's python runtime, unedited, served by a real
`fn-wrapper serve` (gunicorn, two workers) over the local store and S3 (moto's server), with
packages of DigitalHub's names that raise on import on its path (DESIGN §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas
import pytest

from tests.digitalhub_fakes import on_path, raising_packages
from wrapper.entities.project import Project
from wrapper.entities.store import open_store
from wrapper.testing import FunctionClient

ROOT = Path(__file__).resolve().parents[2]

API = """
import os
from pathlib import Path

from digitalhub_runtime_python import handler  # unused here, as in many DigitalHub files
from digitalhub.entities.dataitem.table.entity import DataitemTable


def init_context(context, dataitem, trace):
    di: DataitemTable = context.project.get_dataitem(dataitem)
    assert isinstance(di, DataitemTable)
    setattr(context, "df", di.as_df())
    context.path = di.download()  # each worker's init: a folder of its own run
    with open(trace, "a") as out:
        out.write(f"{os.getpid()} {context.path} {Path(context.path).is_file()}\\n")


def serve(context, event):
    fields = event.fields
    page, size = int(fields.get("page", 0)), int(fields.get("size", 50))
    rows = context.df.iloc[page * size : (page + 1) * size]
    return {"data": rows.to_json(orient="records"), "page": page, "total": len(context.df)}
"""


def test_the_api_serves_a_table_its_workers_each_downloaded(
    start_server, tmp_path: Path, store_uri: str
) -> None:
    frame = pandas.DataFrame({"sensor": [f"S{i}" for i in range(12)], "count": range(12)})
    Project("demo", open_store(store_uri)).log_dataitem("dataset-sensors", "table", data=frame)
    trace = tmp_path / "inits.txt"
    fakes = raising_packages(tmp_path / "fakes")
    served = start_server(
        API,
        "--handler", "main:serve", "--init-function", "init_context",
        "--init-parameters", json.dumps({"dataitem": "dataset-sensors", "trace": str(trace)}),
        "--store", store_uri, "--project", "demo", "--workers", "2",
        env={"PYTHONPATH": on_path(fakes, ROOT)},
    )  # fmt: skip
    status, _, body = served.get("/?page=1&size=5")
    assert status == 200, served.stderr()
    answer = json.loads(body)
    assert (answer["page"], answer["total"]) == (1, 12)
    assert [row["sensor"] for row in json.loads(answer["data"])] == [f"S{i}" for i in range(5, 10)]
    inits = [line.split() for line in trace.read_text().splitlines()]
    assert len({pid for pid, _, _ in inits}) == 2  # /ready: both workers' inits are done
    paths = {Path(path) for _, path, _ in inits}
    assert len(paths) == 2 and all(found == "True" for _, _, found in inits)
    assert all(p.name == "dataset-sensors.parquet" and p.parent.name == "dataitem" for p in paths)
    assert "package was imported" not in served.stderr()


DOWNLOAD = """
from digitalhub_runtime_python import handler


@handler(outputs=["dataset-sensors"])
def downloader(url):
    return url.as_df(file_format="csv", sep=";")
"""


def fn_wrapper(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`fn-wrapper ARGS…` with no FN_WRAPPER_ twin set: the store is the default one."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    command = [sys.executable, "-m", "wrapper", *args]
    return subprocess.run(
        command, cwd=cwd, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_after_a_job_on_the_default_store_the_api_serves_with_no_store_flag(
    start_server, tmp_path: Path, server: str
) -> None:
    rows = "".join(f"S{i};{i}\n" for i in range(12))
    (tmp_path / "www" / "sensors.csv").write_text("sensor;count\n" + rows)
    (tmp_path / "download.py").write_text(DOWNLOAD)
    env = {
        "XDG_DATA_HOME": str(tmp_path / "data"),  # where the default store lives
        "PYTHONPATH": on_path(raising_packages(tmp_path / "fakes"), ROOT),
    }
    put = fn_wrapper(
        "store", "put", f"{server}/sensors.csv", "--name", "url", "--kind", "table",
        "--project", "demo", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    done = fn_wrapper(
        "job", "--project", "demo", "--code-src", "download.py", "--handler", "downloader",
        "--inputs", json.dumps({"url": put.stdout.strip()}), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "fn-wrapper" / "store").is_dir()
    trace = tmp_path / "inits.txt"
    served = start_server(
        API,
        "--handler", "main:serve", "--init-function", "init_context", "--project", "demo",
        "--init-parameters", json.dumps({"dataitem": "dataset-sensors", "trace": str(trace)}),
        "--workers", "1", env=env,
    )  # fmt: skip
    status, _, body = served.get("/?page=2&size=5")
    assert status == 200, served.stderr()
    answer = json.loads(body)
    assert answer["total"] == 12
    assert [row["sensor"] for row in json.loads(answer["data"])] == ["S10", "S11"]


@pytest.mark.usefixtures("restore_imports")
def test_invoke_and_the_function_client_take_the_store_as_serve_does(
    tmp_path: Path, store_uri: str
) -> None:
    frame = pandas.DataFrame({"sensor": ["A", "B", "C"], "count": [1, 2, 3]})
    Project("demo", open_store(store_uri)).log_dataitem("dataset-sensors", "table", data=frame)
    (tmp_path / "main.py").write_text(API)
    source = {
        "code_src": str(tmp_path / "main.py"),
        "handler": "main:serve",
        "init_function": "init_context",
        "init_parameters": {"dataitem": "dataset-sensors", "trace": str(tmp_path / "t")},
    }
    env = {"PYTHONPATH": on_path(raising_packages(tmp_path / "fakes"), ROOT)}
    invoked = fn_wrapper(
        "invoke", "--code-src", source["code_src"], "--handler", "main:serve",
        "--init-function", "init_context",
        "--init-parameters", json.dumps(source["init_parameters"]),
        "--store", store_uri, "--project", "demo", "--path", "/?page=1&size=2",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(json.loads(invoked.stdout)["data"]) == [{"sensor": "C", "count": 3}]
    with FunctionClient(store=store_uri, project="demo", **source) as client:
        answer = client.get("/?page=0&size=2").json()
    assert [row["sensor"] for row in json.loads(answer["data"])] == ["A", "B"]

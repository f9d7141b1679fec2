"""A serve function written for DigitalHub's python runtime, unedited, served by a real
`fn-wrapper serve` (gunicorn, two workers) over the local store and S3 (moto's server), with
packages of DigitalHub's names that raise on import on its path (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas

from tests.digitalhub_fakes import on_path, raising_packages
from wrapper.entities.project import Project
from wrapper.entities.store import open_store

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

"""A handler written for DigitalHub's python runtime runs in the nuclio door (Nuclio's drop-in
mode: the module from PYTHONPATH) without the real DigitalHub packages being imported: ones
of their names that raise on import are on its path (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas

from tests.digitalhub_fakes import on_path, raising_packages
from tests.nuclio.conftest import event
from wrapper.entities.project import Project
from wrapper.entities.store import open_store

ROOT = Path(__file__).resolve().parents[2]

SERVE = """
import digitalhub as dh
from digitalhub_runtime_python import handler
from digitalhub.entities.dataitem.table.entity import DataitemTable


def init_context(context):
    context.logger.info("init done")
    context.hint = DataitemTable.__name__


@handler(outputs=["answer"])
def handler(context, event):
    return {"answer": event.body["question"] * 2, "hint": context.hint, "sdk": dh.__name__}
"""


def test_a_digitalhub_handler_runs_in_the_nuclio_door(processor, tmp_path: Path) -> None:
    fakes = raising_packages(tmp_path / "fakes")
    functions = tmp_path / "worker0" / "functions"  # where the fake processor writes the module
    fake = processor(SERVE, env={"PYTHONPATH": on_path(functions, fakes, ROOT)})
    answer = fake.call(event(b'{"question": 21}', content_type="application/json"))
    assert answer.response["status_code"] == 200, fake.output()
    assert json.loads(answer.body) == {"answer": 42, "hint": "DataItem", "sdk": "digitalhub"}


READS_A_DATAITEM = """
def init_context(context):
    frame = context.project.get_dataitem("sensors").as_df()
    context.total = int(frame["count"].sum())
    context.run_id = context.run.id


def handler(context, event):
    return {"total": context.total, "run": context.run_id, "project": context.project.name}
"""


def test_context_project_reads_the_default_store_in_the_drop_in_mode(
    processor, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    store = open_store(str(data / "fn-wrapper" / "store"))  # the default under XDG_DATA_HOME
    frame = pandas.DataFrame({"sensor": ["A", "B"], "count": [3, 4]})
    Project("demo", store).log_dataitem("sensors", "table", data=frame)
    functions = tmp_path / "worker0" / "functions"
    fake = processor(
        READS_A_DATAITEM,
        "--project", "demo",
        env={"XDG_DATA_HOME": str(data), "RUN_ID": "r-1", "PYTHONPATH": str(functions)},
    )  # fmt: skip
    answer = fake.call(event(b"{}", content_type="application/json"))
    assert answer.response["status_code"] == 200, fake.output()
    assert json.loads(answer.body) == {"total": 7, "run": "r-1", "project": "demo"}


def test_the_nuclio_door_runs_a_document_for_the_serve_action(processor, tmp_path: Path) -> None:
    functions = tmp_path / "worker0" / "functions"
    spec = tmp_path / "run.yaml"
    document = {
        "function": {
            "name": "echo",
            "python_version": "PYTHON3_11",
            "code_src": str(functions / "handler_module.py"),
        },
        "task": {"action": "serve", "resources": {"cpu": "500m", "mem": "256Mi"}},
    }
    spec.write_text(json.dumps(document))
    fake = processor("def handler(context, event):\n    return 'served'\n", "--spec", str(spec))
    answer = fake.call(event(b"{}"))
    assert answer.response["status_code"] == 200, fake.output()
    assert answer.body == b"served"

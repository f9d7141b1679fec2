"""A handler written for DigitalHub's python runtime runs in the nuclio door (Nuclio's drop-in
mode: the module from PYTHONPATH) without the real DigitalHub packages being imported: ones
of their names that raise on import are on its path (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.digitalhub_fakes import on_path, raising_packages
from tests.nuclio.conftest import event

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

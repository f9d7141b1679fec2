"""Functions as Kubeflow Pipelines steps, with the real `kfp` SDK: `fn-wrapper render --target
kfp` writes components that kfp loads; a two-step pipeline (a collect step whose Dataset
feeds a process step) compiles with `kfp.compiler.Compiler`; then each compiled task's
container command, its placeholders filled as KFP's launcher fills them, runs here in order.

KFP's launcher (a Go binary in the step's pod) is not available here: `launch` below stands in
for it, filling `{{$.inputs.parameters['x']}}` with the value rendered by its type,
`{{$.inputs.artifacts['x'].path}}` with the producer's output file, and
`{{$.outputs...}}` with a path per task, as the launcher does. Each image stands for what
`fn-wrapper build` bakes into one: the function's run spec, in FN_WRAPPER_SPEC.
(No `from __future__ import annotations` here: kfp reads the pipeline's annotations as types.)
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import pytest
import yaml

from tests.pipelines.conftest import require_kfp

COLLECT = '''
import pandas as pd
from wrapper import handler


@handler(outputs=["table", "count"])
def collect(rows: int = 3, label: str = "x", options: dict = {}) -> tuple[pd.DataFrame, int]:
    """Rows numbered from options["start"], each with the label."""
    start = options.get("start", 0)
    return pd.DataFrame({"n": range(start, start + rows), "label": [label] * rows}), rows
'''
PROCESS = """
from wrapper import handler


@handler(outputs=[{"name": "model", "kind": "model"}, "total", "labels"])
def process(table, factor: float = 2.0, verbose: bool = False) -> tuple[dict, float, str]:
    frame = table.as_df()
    return {"factor": factor, "rows": len(frame)}, float(frame["n"].sum()) * factor, (
        ",".join(sorted(set(frame["label"]))) + ("!" if verbose else "")
    )
"""


def fn_wrapper(*args: str, cwd: Path, env: Optional[dict[str, str]] = None) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", *args], cwd=cwd, env=environ,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def functions(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Two functions, each with its run spec (as its image has it) and its component."""
    found = {}
    for name, code, inputs in (
        ("collect", COLLECT, {}),
        ("process", PROCESS, {"table": "store://demo/dataitem/table/rows"}),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.py").write_text(textwrap.dedent(code).lstrip())
        spec = {"function": {"name": name, "python_version": "PYTHON3_11",
                             "code_src": f"{name}.py", "handler": name},
                "run": {"inputs": inputs}}  # fmt: skip
        (folder / "run.json").write_text(json.dumps(spec))
        component = fn_wrapper(
            "render", "--spec", "run.json", "--target", "kfp",
            "--image", f"registry.local/{name}:1", cwd=folder,
        )  # fmt: skip
        (folder / "component.yaml").write_text(component)
        found[name] = {"spec": folder / "run.json", "component": folder / "component.yaml"}
    return found


def test_rendered_components_declare_the_handlers_ports(functions: dict[str, Any]) -> None:
    collect = yaml.safe_load(functions["collect"]["component"].read_text())
    assert collect["inputs"] == [
        {"name": "rows", "type": "Integer", "optional": True, "default": "3"},
        {"name": "label", "type": "String", "optional": True, "default": "x"},
        {"name": "options", "type": "JsonObject", "optional": True, "default": "{}"},
    ]
    assert collect["outputs"] == [
        {"name": "table", "type": "Dataset"}, {"name": "count", "type": "Integer"},
    ]  # fmt: skip
    process = yaml.safe_load(functions["process"]["component"].read_text())
    assert [(p["name"], p["type"]) for p in process["inputs"]] == [
        ("table", "Dataset"), ("factor", "Float"), ("verbose", "Boolean"),
    ]  # fmt: skip
    assert [(p["name"], p["type"]) for p in process["outputs"]] == [
        ("model", "Model"), ("total", "Float"), ("labels", "String"),
    ]  # fmt: skip
    container = process["implementation"]["container"]
    assert container["image"] == "registry.local/process:1"
    assert container["args"][:4] == ["--kfp-input", "table", "Dataset", {"inputPath": "table"}]


def test_a_two_step_pipeline_compiles_and_its_steps_run(
    tmp_path: Path, functions: dict[str, Any]
) -> None:
    kfp = require_kfp()
    from kfp import compiler, dsl

    collect = kfp.components.load_component_from_file(str(functions["collect"]["component"]))
    process = kfp.components.load_component_from_file(str(functions["process"]["component"]))

    @dsl.pipeline(name="rows-and-totals")
    def pipeline(label: str = 'it\'s "quoted"', rows: int = 4) -> None:
        collected = collect(rows=rows, label=label, options={"start": 10})
        process(table=collected.outputs["table"], factor=0.5, verbose=True)

    compiled_path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(compiled_path))
    compiled = yaml.safe_load(compiled_path.read_text())
    specs = {f"registry.local/{n}:1": str(f["spec"]) for n, f in functions.items()}
    produced = launch(compiled, {"label": 'it\'s "quoted"', "rows": 4}, specs, tmp_path / "run")

    table = pd.read_parquet(produced["collect"]["table"])
    assert table["n"].tolist() == [10, 11, 12, 13]
    assert set(table["label"]) == {'it\'s "quoted"'}  # quotes travel as they are
    assert produced["collect"]["count"] == 4
    assert produced["process"]["total"] == (10 + 11 + 12 + 13) * 0.5
    assert produced["process"]["labels"] == 'it\'s "quoted"!'
    import pickle

    with open(produced["process"]["model"], "rb") as stream:
        assert pickle.load(stream) == {"factor": 0.5, "rows": 4}


PLACEHOLDER = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](\.path|\.output_file)?\}\}"
)
KINDS = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool, "STRING": str,
         "STRUCT": dict, "LIST": list}  # fmt: skip


def rendered(value: Any, kind: str) -> str:
    """A parameter value as KFP's launcher (Go, protojson) puts it on a command line: numbers
    without a fraction print as whole numbers (protobuf keeps every number as a double)."""
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind in ("STRUCT", "LIST"):
        return json.dumps(whole(value))
    if kind in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        return json.dumps(whole(float(value)))
    return str(value)


def whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole(v) for v in value]
    return value


def read_output(path: Path, kind: str) -> Any:
    text = path.read_text()
    return text if kind == "STRING" else KINDS[kind](json.loads(text))


def filled(
    arg: str,
    values: dict[str, Any],
    declared: dict[str, Any],
    artifacts: dict[str, Path],
    paths: dict[str, Path],
) -> str:
    """One argument with its placeholders filled."""

    def fill(match: re.Match[str]) -> str:
        side, kind, key = match.group(1), match.group(2), match.group(3)
        if side == "outputs":
            return str(paths[key])
        if kind == "artifacts":
            return str(artifacts[key])
        return rendered(values[key], declared[key]["parameterType"])

    return PLACEHOLDER.sub(fill, arg)


def launch(
    compiled: dict[str, Any], arguments: dict[str, Any], specs: dict[str, str], folder: Path
) -> dict[str, dict[str, Any]]:
    """Run the compiled pipeline's tasks in order, as KFP's launcher runs each one's
    container: the produced parameters and artifact paths per task."""
    tasks = compiled["root"]["dag"]["tasks"]
    order = sorted(tasks, key=lambda name: len(tasks[name].get("dependentTasks", [])))
    produced: dict[str, dict[str, Any]] = {}
    for name in order:
        task = tasks[name]
        component = compiled["components"][task["componentRef"]["name"]]
        container = compiled["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        values = {k: d["defaultValue"] for k, d in declared.items() if "defaultValue" in d}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in source:
                values[key] = source["runtimeValue"]["constant"]
            else:
                values[key] = arguments[source["componentInputParameter"]]
        artifacts = {
            key: produced[source["taskOutputArtifact"]["producerTask"]][
                source["taskOutputArtifact"]["outputArtifactKey"]]
            for key, source in task.get("inputs", {}).get("artifacts", {}).items()
        }  # fmt: skip
        outputs = component.get("outputDefinitions", {})
        paths = {key: folder / name / key / "data" for key in outputs.get("artifacts", {})}
        paths.update(
            {key: folder / name / "parameters" / key for key in outputs.get("parameters", {})}
        )

        args = [filled(arg, values, declared, artifacts, paths) for arg in container["args"]]
        command = container["command"]
        assert command[0] == "fn-wrapper"
        environment = {"FN_WRAPPER_SPEC": specs[container["image"]],
                       "XDG_CACHE_HOME": str(folder / "cache")}  # fmt: skip
        fn_wrapper(*command[1:], *args, cwd=folder.parent, env=environment)
        results: dict[str, Any] = {
            key: path for key, path in paths.items() if key in outputs.get("artifacts", {})
        }
        for key, definition in outputs.get("parameters", {}).items():
            results[key] = read_output(paths[key], definition["parameterType"])
        produced[name] = results
    return produced

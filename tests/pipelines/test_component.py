"""`fn-wrapper render --target kfp`: a function's Kubeflow Pipelines component, read from its
handler's source without running it (tests/pipelines/test_pipeline.py loads and compiles
components with the real kfp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

IMAGE = "registry.local/fn:1"


def render(tmp_path: Path, code: str, *args: str, **run: Any) -> subprocess.CompletedProcess:
    (tmp_path / "main.py").write_text(textwrap.dedent(code).lstrip())
    spec = {"function": {"name": "fn", "python_version": "PYTHON3_11", "code_src": "main.py",
                         "handler": run.pop("handler", "handler")}, "run": run}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(spec))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    command = [sys.executable, "-m", "wrapper", "render", "--spec", "run.json", "--target", "kfp"]
    return subprocess.run(
        [*command, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
    )


def component(tmp_path: Path, code: str, **run: Any) -> dict[str, Any]:
    result = render(tmp_path, code, "--image", IMAGE, **run)
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    return rendered


def ports(rendered: dict[str, Any], side: str) -> list[tuple[Any, ...]]:
    return [tuple(port.values()) for port in rendered[side]]


def test_parameter_types_come_from_annotations_then_defaults(tmp_path: Path) -> None:
    rendered = component(tmp_path, """
        from typing import Any, Dict, Optional

        def handler(context, event, project, run, a: int, b: "float", c: Optional[str],
                    d: Dict[str, Any], e: list, f: bool = False, g=3, h=0.5, i=True, j="x",
                    k={"n": 1}, l=[1, 2], m=None, n: "dict[str, int] | None" = None, *rest,
                    o: int = 7, **others):
            return None
    """)  # fmt: skip
    assert ports(rendered, "inputs") == [
        ("a", "Integer"), ("b", "Float"), ("c", "String"), ("d", "JsonObject"),
        ("e", "JsonArray"), ("f", "Boolean", True, "false"), ("g", "Integer", True, "3"),
        ("h", "Float", True, "0.5"), ("i", "Boolean", True, "true"), ("j", "String", True, "x"),
        ("k", "JsonObject", True, '{"n": 1}'), ("l", "JsonArray", True, "[1, 2]"),
        ("m", "String", True), ("n", "JsonObject", True), ("o", "Integer", True, "7"),
    ]  # fmt: skip
    assert rendered["outputs"] == []  # `-> None`: nothing
    args = rendered["implementation"]["container"]["args"]
    assert args[:8] == ["--kfp-parameter", "a", "Integer", {"inputValue": "a"},
                        "--kfp-parameter", "b", "Float", {"inputValue": "b"}]  # fmt: skip
    assert rendered["implementation"]["container"]["command"] == ["fn-wrapper", "job"]


def test_entities_are_input_artifacts(tmp_path: Path) -> None:
    rendered = component(tmp_path, """
        from wrapper.entities import DataItem, Model

        def handler(table: DataItem, model: "Model", notes, weights):
            return None
    """, inputs={"notes": "store://p/artifact/artifact/notes",
                 "weights": "store://p/model/model/w"})  # fmt: skip
    assert ports(rendered, "inputs") == [
        ("table", "Dataset"), ("model", "Model"), ("notes", "Artifact"), ("weights", "Model"),
    ]  # fmt: skip
    args = rendered["implementation"]["container"]["args"]
    assert args[:4] == ["--kfp-input", "table", "Dataset", {"inputPath": "table"}]


def test_the_runs_parameters_are_the_defaults(tmp_path: Path) -> None:
    rendered = component(tmp_path, "def handler(depth: int = 2, name=None):\n    pass\n",
                         parameters={"depth": 5, "name": "it's"})  # fmt: skip
    assert ports(rendered, "inputs") == [
        ("depth", "Integer", True, "5"), ("name", "String", True, "it's"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "outputs"),
    [
        ('@handler(outputs=["frame", "n"])\ndef handler() -> Tuple[pd.DataFrame, int]: ...',
         [("frame", "Dataset"), ("n", "Integer")]),
        ('@handler(outputs=[{"name": "m", "kind": "sklearn"}, {"name": "t", "kind": "table"},'
         ' {"name": "a", "kind": "artifact"}])\ndef handler(): ...',
         [("m", "Model"), ("t", "Dataset"), ("a", "Artifact")]),
        ("def handler() -> tuple[str, float, bool, Path, dict]: ...",
         [("output_0", "String"), ("output_1", "Float"), ("output_2", "Boolean"),
          ("output_3", "Artifact"), ("output_4", "Artifact")]),  # a dict is pickled
        ("def handler() -> 'pd.DataFrame': ...", [("output_0", "Dataset")]),
        ("def handler(): ...", []),
    ],
)  # fmt: skip
def test_outputs_and_their_types(tmp_path: Path, code: str, outputs: list[Any]) -> None:
    header = "from pathlib import Path\nfrom typing import Tuple\nimport pandas as pd\n"
    header += "from wrapper import handler\n"
    assert ports(component(tmp_path, header + code), "outputs") == outputs


def test_a_class_method_handler(tmp_path: Path) -> None:
    rendered = component(tmp_path, """
        class Scorer:
            def score(self, limit: int = 1) -> float:
                return 0.5
    """, handler="main:Scorer.score")  # fmt: skip
    assert ports(rendered, "inputs") == [("limit", "Integer", True, "1")]
    assert ports(rendered, "outputs") == [("output_0", "Float")]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ('from wrapper import handler\n@handler(outputs=["model"])\ndef handler(): ...',
         "output 'model': its kind cannot be known without running the code"),
        ('from wrapper import handler\n@handler(outputs=[{"name": "x", "kind": "blob"}])\n'
         "def handler(): ...", "output 'x': kind 'blob' is not one of"),
        ("def handler() -> list: ...", "returns a list, which the job door keeps as one output"),
        ("def other(): ...", "handler 'handler': no function 'handler' defined in main.py"),
        ("def handler(:\n", "syntax error in main.py line 1"),
    ],
)  # fmt: skip
def test_what_cannot_be_known_is_an_error_naming_it(
    tmp_path: Path, code: str, message: str
) -> None:
    result = render(tmp_path, code, "--image", IMAGE)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_code_the_image_lacks_comes_with_the_run_spec(tmp_path: Path) -> None:
    code = "def handler(n: int = 1) -> int:\n    return n\n"
    local = render(tmp_path, code)  # a local file and no image: refused
    assert local.returncode == 2 and "a local path is not in the base image" in local.stderr
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    inline = subprocess.run(
        [sys.executable, "-m", "wrapper", "render", "--target", "kfp", "--code", code,
         "--name", "inline"], cwd=tmp_path, env=environ, capture_output=True, text=True,
    )  # fmt: skip
    assert inline.returncode == 0, inline.stderr
    command = yaml.safe_load(inline.stdout)["implementation"]["container"]["command"]
    assert command[:3] == ["fn-wrapper", "job", "--spec"]
    assert json.loads(command[3])["function"]["source"]["code"] == code

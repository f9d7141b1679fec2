"""Nuclio function configs through the command line, as a Nuclio user brings them: `invoke`,
`build --builder none` and `render` (both targets) as real subprocesses. Serving them is in
tests/serve/test_nuclio_config.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.build.test_context import wheel

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "nuclio_configs"
SCHEMA = json.loads((ROOT / "deploy" / "nuclio-function.schema.json").read_text())
UNMAPPED = (
    "Nuclio config: no meaning here, not used: spec.platform, spec.build.baseImage,"
    " spec.triggers.nightly (kind cron: kept for render)"
)


def fn_wrapper(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ.pop("GREETING", None)
    environ.update(XDG_CACHE_HOME=str(cwd / "cache"), **env)
    command = [sys.executable, "-m", "wrapper", *args, "--log-format", "text"]
    return subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def greeter(tmp_path: Path) -> Path:
    shutil.copytree(CONFIGS / "greeter", tmp_path / "greeter")
    return tmp_path / "greeter"


@pytest.mark.parametrize(
    "source",
    [["--spec", "greeter/function.yaml"], ["--spec", "greeter"], ["--code-src", "greeter"]],
)
def test_invoke_runs_the_greeter_from_its_config(greeter: Path, source: list[str]) -> None:
    result = fn_wrapper("invoke", *source, "--body", "Ada", cwd=greeter.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, Ada!"  # handler greeter:handler, GREETING from spec.env
    warnings = [
        line
        for line in result.stderr.splitlines()
        if " warning " in line and "asks for Python 3.11" not in line  # on other Pythons
    ]
    assert [w.split(" warning ", 1)[1].strip() for w in warnings] == [
        UNMAPPED,
        "task.envs API_TOKEN: set from valueFrom references where the rendered manifests run;"
        " not set by a local run (set them in the environment)",
    ]


def test_the_environment_wins_over_the_configs_env(greeter: Path) -> None:
    result = fn_wrapper(
        "invoke", "--spec", "greeter", "--body", "Ada", cwd=greeter.parent, GREETING="Hi"
    )
    assert result.returncode == 0 and result.stdout == "Hi, Ada!", result.stderr


def test_invoke_runs_an_inline_configured_source_file(tmp_path: Path) -> None:
    shutil.copy(CONFIGS / "reverse.py", tmp_path)
    for source in (["--code-src", "reverse.py"], ["--spec", "reverse.py"]):
        result = fn_wrapper("invoke", *source, "--body", "Ada", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "adA!"  # handler reverse:reverse, SUFFIX from the block's env


def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "function.yaml").write_text("spec:\n  runtime: golang\n  handler: main:Handler\n")
    result = fn_wrapper("invoke", "--spec", "function.yaml", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "fn-wrapper invoke: error: Nuclio config: spec.runtime 'golang': fn-wrapper runs Python"
        " functions (python, python:3.9 … python:3.13)"
    )


def test_build_turns_pip_commands_into_requirements(greeter: Path) -> None:
    house = greeter.parent / "house"
    house.mkdir()
    wheel(house, "tinycrypt")
    wheel(house, "tinyfmt", "1.2")
    result = fn_wrapper(
        "build", "--spec", "greeter/function.yaml", "--builder", "none", "--context-dir", "ctx",
        "--wheelhouse", str(house), "--no-index", cwd=greeter.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    context = greeter.parent / "ctx"
    pinned = (context / "wheels" / "requirements.txt").read_text().split()
    assert pinned == ["tinycrypt==1.0", "tinyfmt==1.2"]
    assert sorted(p.name for p in (context / "wheels").glob("*.whl")) == [
        "tinycrypt-1.0-py3-none-any.whl", "tinyfmt-1.2-py3-none-any.whl",
    ]  # fmt: skip
    containerfile = (context / "Containerfile").read_text()
    assert "RUN apt-get update && apt-get install -y --no-install-recommends curl" in containerfile
    run = json.loads((context / "function" / "run.json").read_text())
    assert run["function"]["handler"] == "greeter:handler"
    assert (context / "function" / "code" / "greeter.py").is_file()


def render_nuclio(folder: Path, spec: str, *args: str) -> dict[str, Any]:
    result = fn_wrapper("render", "--spec", spec, "--target", "nuclio", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    return config


def test_render_for_nuclio_gives_back_an_equivalent_config(greeter: Path) -> None:
    original = yaml.safe_load((greeter / "function.yaml").read_text())["spec"]
    rendered = render_nuclio(greeter.parent, "greeter/function.yaml")
    spec = rendered["spec"]
    assert rendered["metadata"]["name"] == "greeter"
    assert rendered["metadata"]["labels"]["team"] == "data"
    assert rendered["metadata"]["annotations"] == {"owner": "data-team"}
    assert spec["handler"] == original["handler"] and spec["runtime"] == "python:3.11"
    env = {e["name"]: e for e in spec["env"]}
    assert [env[e["name"]] for e in original["env"]] == original["env"]
    assert "FN_WRAPPER_SPEC" not in env  # the code comes as Nuclio brings it (nuctl --path)
    assert spec["triggers"] == original["triggers"]
    assert (spec["minReplicas"], spec["maxReplicas"], spec["targetCPU"]) == (1, 4, 60)
    assert spec["eventTimeout"] == "30s" and spec["resources"] == original["resources"]
    steps = spec["build"]["directives"]["preCopy"]
    assert steps == [
        {"kind": "USER", "value": "root"},
        {"kind": "RUN", "value": "pip install --no-cache-dir tinycrypt 'tinyfmt>=1.0'"},
        {"kind": "RUN", "value": original["build"]["commands"][0]},
        {"kind": "USER", "value": "1000:1000"},
    ]
    # and back: the rendered config, read as a config, renders to itself
    (greeter / "rendered.yaml").write_text(yaml.safe_dump(rendered))
    assert render_nuclio(greeter.parent, "greeter/rendered.yaml") == rendered


def test_flags_override_the_config_when_rendering(greeter: Path) -> None:
    spec = render_nuclio(
        greeter.parent, "greeter/function.yaml", "--workers", "5", "--max-replicas", "7"
    )["spec"]
    assert spec["triggers"]["web"]["numWorkers"] == 5 and spec["maxReplicas"] == 7


def test_inline_function_source_code_stays_nuclios_code_entry(tmp_path: Path) -> None:
    code = base64.b64encode(b"def handler(context, event):\n    return 'inline'\n").decode()
    config = {"metadata": {"name": "inline"}, "spec": {"runtime": "python:3.11",
              "handler": "app:handler", "build": {"functionSourceCode": code}}}  # fmt: skip
    (tmp_path / "function.yaml").write_text(yaml.safe_dump(config))
    spec = render_nuclio(tmp_path, "function.yaml")["spec"]
    assert spec["build"]["functionSourceCode"] == code and spec["handler"] == "app:handler"
    assert "directives" not in spec["build"]
    invoked = fn_wrapper("invoke", "--spec", "function.yaml", cwd=tmp_path)
    assert invoked.returncode == 0 and invoked.stdout == "inline", invoked.stderr
    # Kubernetes has no code entry: the run spec carries the code
    result = fn_wrapper("render", "--spec", "function.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifests = list(yaml.safe_load_all(result.stdout))
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    config_map = next(m for m in manifests if m["kind"] == "ConfigMap")
    assert json.loads(config_map["data"]["run.json"])["function"]["source"]["base64"] == code


def test_render_for_kubernetes_serves_the_config(greeter: Path) -> None:
    no_image = fn_wrapper("render", "--spec", "greeter/function.yaml", cwd=greeter.parent)
    assert no_image.returncode == 2 and "a local path is not in the base image" in no_image.stderr
    result = fn_wrapper(
        "render", "--spec", "greeter/function.yaml", "--image", "registry.local/greeter:1",
        cwd=greeter.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifests = {m["kind"]: m for m in yaml.safe_load_all(result.stdout)}
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    assert set(manifests) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "GREETING", "value": "Hello"} in container["env"]
    assert {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "greeter-secrets", "key": "token"}}} in container["env"]  # fmt: skip
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}
    scaler = manifests["HorizontalPodAutoscaler"]["spec"]
    assert (scaler["minReplicas"], scaler["maxReplicas"]) == (1, 4)
    assert scaler["metrics"][0]["resource"]["target"]["averageUtilization"] == 60

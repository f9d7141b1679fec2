"""Kubeflow's containerized Python component (tests/pipelines/seed, as KFP's docs write it) runs
unchanged through fn-wrapper's doors: real subprocesses, the real kfp SDK.

The source is the seed's folder (`--code-src` the copy, which holds `src/`), so the component's
module is `src.my_component` and its `from .math import add_numbers` works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.conftest import require_kfp
from tests.serve.conftest import Served

pytestmark = pytest.mark.slow

SEED = Path(__file__).parent / "seed"
HANDLER = "src/my_component.py:add"
PARAMETERS = json.dumps({"a": 2, "b": 3})


def copy_seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    shutil.copytree(SEED, seed, ignore=shutil.ignore_patterns("__pycache__"))
    return seed


def fn_wrapper(seed: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`fn-wrapper ARGS` run in `seed` with no FN_WRAPPER_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ["XDG_CACHE_HOME"] = str(seed.parent / "cache")
    return subprocess.run(
        [sys.executable, "-m", "wrapper", *args],
        cwd=seed,
        env=environ,
        capture_output=True,
        timeout=60,
    )


def test_invoke_prints_the_sum(tmp_path: Path) -> None:
    require_kfp()
    seed = copy_seed(tmp_path)
    result = fn_wrapper(
        seed, "invoke", "--code-src", str(seed), "--handler", HANDLER, "--parameters", PARAMETERS
    )
    assert (result.returncode, result.stdout) == (0, b"5"), result.stderr.decode()
    assert b"shadows the standard-library module" not in result.stderr


def test_job_keeps_the_sum_as_a_result(tmp_path: Path) -> None:
    require_kfp()
    seed = copy_seed(tmp_path)
    result = fn_wrapper(
        seed, "job", "--store", str(tmp_path / "store"),
        "--code-src", str(seed), "--handler", HANDLER, "--parameters", PARAMETERS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout.decode().splitlines()[-1])
    assert (summary["state"], summary["results"]) == ("COMPLETED", {"output_0": 5})


def test_serve_answers_a_post_with_the_sum(tmp_path: Path) -> None:
    """The serve door does not map a JSON body's fields to the handler's arguments (the event
    is the only value that changes per call): `a` and `b` are the function's `--parameters`,
    and the POSTed body `{"a": 2, "b": 3}` is the event's, which `add` does not take."""
    require_kfp()
    seed = copy_seed(tmp_path)
    workdir = tmp_path / "server"
    workdir.mkdir()
    source = ["--code-src", str(seed), "--handler", HANDLER, "--parameters", PARAMETERS]
    served = Served("", workdir, "--workers", "1", source=source)
    try:
        served.wait(served.ready)
        status, _, body = served.request(
            "POST", "/", json.dumps({"a": 2, "b": 3}).encode(), {"Content-Type": "application/json"}
        )
    finally:
        served.close()
    assert (status, body) == (200, b"5"), served.stderr()


def test_the_standard_math_beside_the_source_math(tmp_path: Path) -> None:
    """Another module of the source, loaded in the same process as the component, imports the
    standard library's `math` while `.math` is the source's."""
    require_kfp()
    seed = copy_seed(tmp_path)
    (seed / "src" / "circle.py").write_text(
        "import math\n\nfrom .my_component import add\n\n\n"
        "def pi_plus(n: int) -> float:\n    return add.python_func(math.pi, n)\n"
    )
    result = fn_wrapper(
        seed, "invoke", "--code-src", str(seed), "--handler", "src/circle.py:pi_plus",
        "--parameters", '{"n": 1}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert float(result.stdout) == pytest.approx(4.14159, abs=1e-5)


def test_src_itself_as_the_source_as_kfp_component_build_takes_it(tmp_path: Path) -> None:
    require_kfp()
    seed = copy_seed(tmp_path)
    result = fn_wrapper(
        seed, "invoke", "--code-src", "src", "--handler", "my_component.py:add",
        "--parameters", PARAMETERS,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, b"5"), result.stderr.decode()
    assert b"shadows the standard-library module" not in result.stderr


def test_build_takes_the_decorators_options_and_writes_its_component(tmp_path: Path) -> None:
    """`kfp component build src/ --component-filepattern my_component.py --no-push-image`, as
    fn-wrapper build: the handler, base image, target image and packages from the decorator;
    the component file names the target image, and its command, filled as KFP's launcher
    fills it, runs the function (the image's code and run spec stood in for by the context's)."""
    kfp = require_kfp()
    from tests.build.test_context import wheel

    seed = copy_seed(tmp_path)
    (seed / "house").mkdir()
    wheel(seed / "house", "six", "1.17.0")  # packages_to_install, from a wheelhouse
    result = fn_wrapper(  # fn-wrapper's own dependencies come from the package index
        seed, "build", "src", "--component-filepattern", "my_component.py", "--builder", "none",
        "--context-dir", "ctx", "--wheelhouse", "house",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["base_image"] == "python:3.11"
    assert summary["component"] == "ctx/component_metadata/add.yaml"
    context = seed / "ctx"
    assert (context / "wheels" / "requirements.txt").read_text().split() == ["six==1.17.0"]
    containerfile = (context / "Containerfile").read_text()
    assert containerfile.count("FROM python:3.11") == 2  # python:3.11 lacks fn-wrapper:
    assert "FROM python:3.11 AS runtime" in containerfile  # it goes on top, from the context
    assert "FROM runtime AS requirements" in containerfile
    runtime = sorted(p.name for p in (context / "runtime").iterdir())
    assert "fn_wrapper-0.1.0-py3-none-any.whl" in runtime and "constraints.txt" in runtime
    pinned = (context / "runtime" / "constraints.txt").read_text().replace("-", "_").lower()
    for name in ("pydantic", "gunicorn", "nuclio_sdk", "msgpack"):
        assert f"\n{name}==" in pinned and any(p.lower().startswith(name) for p in runtime)
    run = json.loads((context / "function" / "run.json").read_text())
    assert (run["function"]["name"], run["function"]["handler"]) == ("add", "my_component.py:add")
    component = kfp.components.load_component_from_file(str(context / summary["component"][4:]))
    assert component.component_spec.implementation.container.image == (
        "registry.local/my-component:v1"
    )
    places = {"a": "2", "b": "40", "output_0": str(tmp_path / "sum")}  # the launcher's
    filled = [
        places[next(iter(arg.values()))] if isinstance(arg, dict) else arg
        for arg in component_args(context / summary["component"][4:])
    ]
    run["function"]["code_src"] = str(context / "function" / "code")  # the image's /opt/function
    (tmp_path / "run.json").write_text(json.dumps(run))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    environ.update(FN_WRAPPER_SPEC=str(tmp_path / "run.json"), XDG_CACHE_HOME=str(tmp_path / "c"))
    job = subprocess.run(
        [sys.executable, "-m", "wrapper", "job", *filled], cwd=tmp_path, env=environ,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr.decode()
    assert (tmp_path / "sum").read_text() == "42"


def component_args(path: Path) -> list[Any]:
    """The component's container arguments, placeholders (`{inputValue: a}`) as they are."""
    import yaml

    container = yaml.safe_load(path.read_text())["implementation"]["container"]
    assert container["command"] == ["fn-wrapper", "job"]
    return list(container["args"])


def test_the_nuclio_door_calls_the_component(tmp_path: Path) -> None:
    """The processor passes its own --handler first; the one given after it wins (argparse)."""
    require_kfp()
    from tests.nuclio.conftest import FakeProcessor, event

    seed = copy_seed(tmp_path)
    workdir = tmp_path / "worker"
    workdir.mkdir()
    fake = FakeProcessor(
        workdir, "def handler(context, event):\n    return 'decoy'\n",
        "--code-src", str(seed), "--handler", HANDLER, "--parameters", PARAMETERS,
    )  # fmt: skip
    try:
        fake.start()
        answer = fake.call(event(b""))
        assert (answer.response["status_code"], answer.body) == (200, b"5"), fake.output()
    finally:
        fake.close()

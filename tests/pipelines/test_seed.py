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

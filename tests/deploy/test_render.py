"""`fn-wrapper render` refuses what would not deploy, naming the field, with exit 2 and no
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

FUNCTION = {"name": "hello", "python_version": "PYTHON3_11", "code_src": "https://code.local/x.py"}


def render(tmp_path: Path, task: dict[str, Any], *args: str, **function: Any) -> Any:
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({"function": {**FUNCTION, **function}, "task": task}))
    command = [sys.executable, "-m", "wrapper", "render", "--spec", str(spec), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def volume(**fields: Any) -> dict[str, Any]:
    return {"volume_type": "empty_dir", "name": "work", "mount_path": "/work", **fields}


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"resources": {"cpu": {"requests": "2", "limits": "500m"}}},
         "task.resources.cpu: requests (2) are greater than limits (500m)"),
        ({"resources": {"mem": {"requests": "2Gi", "limits": "1G"}}},
         "task.resources.mem: requests (2Gi) are greater than limits (1G)"),
        ({"resources": {"gpu": {"requests": "1", "limits": "2"}}},
         "task.resources.gpu: requests (1) and limits (2) differ"),
        ({"volumes": [volume(name="Bad_Name")]}, "task.volumes[0].name: 'Bad_Name' is not"),
        ({"volumes": [volume(name="scratch")]}, "task.volumes[0].name: 'scratch' is the name"),
        ({"volumes": [volume(mount_path="data")]},
         "task.volumes[0].mount_path: 'data' is not an absolute path"),
        ({"volumes": [volume(mount_path="/tmp/")]}, "task.volumes[0].mount_path: '/tmp/' is where"),
        ({"volumes": [volume(), volume(mount_path="/other")]},
         "task.volumes: two volumes have the name 'work'"),
        ({"volumes": [volume(volume_type="persistent_volume_claim", spec={"claimName": "x"})]},
         "task.volumes[0].spec: 'claimName' is not an option of a persistent_volume_claim"),
        ({"volumes": [volume(spec={"sizeLimit": "big"})]}, "task.volumes[0].spec: 'big' is not"),
        ({"affinity": {"foo": "bar"}}, "task.affinity.foo: unknown field (allowed: nodeAffinity"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]},
         "task.tolerations[0].operator: 'Maybe' is not one of Exists, Equal"),
        ({"tolerations": [{"key": "gpu", "effect": "Never"}]},
         "task.tolerations[0].effect: 'Never' is not one of NoSchedule"),
    ],
)  # fmt: skip
def test_a_malformed_task_field_is_refused_by_name(
    tmp_path: Path, task: dict[str, Any], message: str
) -> None:
    result = render(tmp_path, {"action": "serve", **task})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_gpu_request_alone_becomes_its_limit(tmp_path: Path) -> None:
    result = render(tmp_path, {"action": "job", "resources": {"gpu": {"requests": "1"}}})
    assert result.returncode == 0, result.stderr
    job = list(yaml.safe_load_all(result.stdout))[-1]
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}


@pytest.mark.parametrize("target", ["kubernetes", "nuclio"])
def test_local_code_needs_an_image_built_with_it(tmp_path: Path, target: str) -> None:
    """A local path is not in the base image: the pod could never load it."""
    (tmp_path / "main.py").write_text("def handler(context, event):\n    return 1\n")
    result = render(tmp_path, {"action": "serve"}, "--target", target, code_src="main.py")
    assert result.returncode == 2
    assert "a local path is not in the base image" in result.stderr
    assert "fn-wrapper build" in result.stderr and "Traceback" not in result.stderr
    built = render(tmp_path, {"action": "serve"}, "--target", target, "--image",
                   "registry.local/hello:1", code_src="main.py")  # fmt: skip
    assert built.returncode == 0, built.stderr

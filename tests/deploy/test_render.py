"""`fn-wrapper render` refuses what would not deploy, naming the field, with exit 2 and no
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
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
         "task.volumes[0].spec: 'claimName' is not an option of persistent_volume_claim volumes"),
        ({"volumes": [volume(spec={"sizeLimit": "big"})]}, "task.volumes[0].spec: 'big' is not"),
        ({"affinity": {"foo": "bar"}}, "task.affinity.foo: unknown field (allowed: nodeAffinity"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]},
         "task.tolerations[0].operator: 'Maybe' is not one of Exists, Equal"),
        ({"tolerations": [{"key": "gpu", "effect": "Never"}]},
         "task.tolerations[0].effect: 'Never' is not one of NoSchedule"),
        # what the API server would refuse
        ({"tolerations": [{"effect": "NoSchedule"}]},
         "task.tolerations[0]: key: an empty key (matching every taint) needs operator Exists"),
        ({"tolerations": [{"key": "", "operator": "Equal", "value": "x"}]},
         "task.tolerations[0]: key: an empty key (matching every taint) needs operator Exists"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists", "tolerationSeconds": 60}]},
         "task.tolerations[0]: tolerationSeconds: needs effect NoExecute, not none"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule",
                           "tolerationSeconds": 60}]},
         "task.tolerations[0]: tolerationSeconds: needs effect NoExecute, not NoSchedule"),
        ({"resources": {"gpu": {"limits": "0.5"}}},
         "task.resources.gpu: limits: '0.5' is not a whole number of GPUs"),
        ({"resources": {"gpu": {"requests": "500m"}}},
         "task.resources.gpu: requests: '500m' is not a whole number of GPUs"),
        # a quantity beyond Kubernetes' range (it was a decimal.Overflow, an internal error)
        ({"resources": {"cpu": {"requests": "1e9999999"}}},
         "task.resources.cpu.requests: '1e9999999' is more than a Kubernetes quantity may be"),
        ({"resources": {"cpu": {"requests": "1e9999999", "limits": "2"}}},
         "task.resources.cpu.requests: '1e9999999' is more than a Kubernetes quantity may be"),
        ({"resources": {"mem": {"limits": "1e99999999999999999999"}}},
         "task.resources.mem.limits: '1e99999999999999999999' is more than"),
        ({"volumes": [volume(spec={"sizeLimit": "8Ei"})]},
         "task.volumes[0].spec: '8Ei' is more than a Kubernetes quantity may be"),
        ({"envs": [{"name": "FN_WRAPPER_GRACEFUL_TIMEOUT", "value": "0"}]},
         "task.envs[0]: FN_WRAPPER_GRACEFUL_TIMEOUT '0' must be more than 0 seconds"),
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


def test_tolerations_kubernetes_accepts(tmp_path: Path) -> None:
    tolerations = [
        {"operator": "Exists"},  # every taint
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        {"key": "pool", "value": "batch", "effect": "NoSchedule"},
    ]
    result = render(tmp_path, {"action": "job", "tolerations": tolerations,
                               "resources": {"gpu": {"limits": "2"}}})  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = list(yaml.safe_load_all(result.stdout))[-1]
    kubernetes_validate.validate(job, "1.30", strict=True)
    assert job["spec"]["template"]["spec"]["tolerations"][0] == {"operator": "Exists"}


def test_requirements_on_kubernetes_need_an_image_built_with_them(tmp_path: Path) -> None:
    """Only `fn-wrapper build` installs function.requirements: the base image lacks them."""
    result = render(tmp_path, {"action": "serve"}, requirements=["boto3"])
    assert result.returncode == 2 and result.stdout == ""
    assert "function.requirements ['boto3']: the base image does not have them" in result.stderr
    assert "fn-wrapper build" in result.stderr and "Traceback" not in result.stderr


def test_nuclios_build_installs_requirements_on_the_base_image(tmp_path: Path) -> None:
    """Nuclio builds the processor image itself: the requirements become its build steps, run
    as root (the base image's user cannot write its packages), then back to user 1000."""
    result = render(tmp_path, {"action": "serve"}, "--target", "nuclio",
                    requirements=["boto3", "pandas>=2; python_version>'3.8'"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    build = yaml.safe_load(result.stdout)["spec"]["build"]
    assert build["directives"] == {"preCopy": [
        {"kind": "USER", "value": "root"},
        {"kind": "RUN", "value": "pip install --no-cache-dir boto3"
                                 " 'pandas>=2; python_version>'\"'\"'3.8'\"'\"''"},
        {"kind": "USER", "value": "1000:1000"},
    ]}  # fmt: skip


@pytest.mark.parametrize("target", ["kubernetes", "nuclio"])
def test_an_image_with_the_requirements_renders_as_it_is(tmp_path: Path, target: str) -> None:
    built = render(tmp_path, {"action": "serve"}, "--target", target, "--image",
                   "registry.local/hello:1", requirements=["boto3"])  # fmt: skip
    assert built.returncode == 0, built.stderr
    given = render(tmp_path, {"action": "serve"}, "--target", target,
                   requirements=["boto3"], image="registry.local/hello:1")  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert "pip install" not in built.stdout + given.stdout  # the image has them

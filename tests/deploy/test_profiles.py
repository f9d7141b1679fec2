"""Task profiles merged under the task's own fields, and the serve autoscaler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_kubernetes import IMAGE, KUBERNETES, document
from wrapper.deploy.kubernetes import manifests
from wrapper.deploy.profiles import apply_profile
from wrapper.errors import SpecError

GPU_PROFILE = {
    "resources": {"cpu": {"requests": "2"}, "gpu": {"limits": "1"}},
    "node_selector": [{"key": "pool", "value": "gpu"}],
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "envs": [{"name": "FROM_PROFILE", "value": "1"}],
}


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(GPU_PROFILE))
    (tmp_path / "broken.yaml").write_text(
        yaml.safe_dump({"resources": {"cpu": {"limits": "lots"}}})
    )
    (tmp_path / "four.yaml").write_text(yaml.safe_dump({"replicas": 4, "service_type": "NodePort"}))
    (tmp_path / "unparsable.yaml").write_text("resources: {cpu: [\n")
    (tmp_path / "unparsable-json.json").write_text('{"replicas": 4,}')
    (tmp_path / "big.yaml").write_text("resources: big\n")
    return tmp_path


def test_the_profile_fills_what_the_task_leaves_empty(profiles: Path) -> None:
    task = document(
        "job", profile="gpu", resources={"cpu": {"requests": "500m"}},
        envs=[{"name": "OWN", "value": "yes"}],
    )["task"]  # fmt: skip
    merged = apply_profile(task, profiles)
    assert merged["resources"]["cpu"] == {"requests": "500m", "limits": None}  # the task's own
    assert merged["resources"]["gpu"] == {"requests": None, "limits": "1"}  # from the profile
    assert merged["envs"] == [
        {"name": "OWN", "value": "yes", "value_from": None}
    ]  # set by the task: kept
    assert merged["node_selector"] == [{"key": "pool", "value": "gpu"}]
    assert apply_profile(document("job")["task"], None) == document("job")["task"]


def test_flat_resources_merge_resource_by_resource(tmp_path: Path) -> None:
    """DigitalHub 0.15's flat form in the profile or the task: a task's flat cpu replaces the
    profile's whole cpu; what the task leaves unset (mem, disk) comes from the profile."""
    profile = {"resources": {"cpu": {"requests": "1", "limits": "4"}, "mem": "2Gi", "disk": 10}}
    (tmp_path / "batch.yaml").write_text(yaml.safe_dump(profile))
    merged = apply_profile(
        document("job", profile="batch", resources={"cpu": "2"})["task"], tmp_path
    )
    assert merged["resources"] == {
        "cpu": {"requests": "2", "limits": "2"},
        "mem": {"requests": "2Gi", "limits": "2Gi"},
        "gpu": None,
        "disk": "10",
    }


@pytest.mark.parametrize(
    ("name", "folder", "message"),
    [
        ("gpu", None, "no profiles folder (--profiles DIR)"),
        ("missing", "here", "no missing.yaml or missing.json in"),
        ("../gpu", "here", "is not a profile name"),
        ("broken", "here", "task.profile 'broken': resources.cpu.limits:"),
        ("unparsable", "here", "unparsable.yaml is not valid: while parsing"),
        ("unparsable-json", "here", "unparsable-json.json is not valid: "),
        ("big", "here", "big.yaml: resources: 'big' is not a mapping of cpu, mem, gpu and disk"),
    ],
)
def test_profile_errors_are_named(
    profiles: Path, name: str, folder: str | None, message: str
) -> None:
    task = document("job", profile=name)["task"]
    with pytest.raises(SpecError) as caught:
        apply_profile(task, profiles if folder else None)
    assert message in caught.value.message


def test_a_task_field_set_to_zero_is_set(profiles: Path) -> None:
    merged = apply_profile(document("serve", profile="four", replicas=0)["task"], profiles)
    assert (merged["replicas"], merged["service_type"]) == (0, "NodePort")
    merged = apply_profile(document("serve", profile="four")["task"], profiles)
    assert merged["replicas"] == 4


@pytest.mark.parametrize("name", ["unparsable", "unparsable-json", "big"])
def test_render_names_a_malformed_profile_file(profiles: Path, tmp_path: Path, name: str) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({
        "function": {"name": "hello", "python_version": "PYTHON3_11",
                     "code_src": "https://code.local/main.py"},
        "task": {"action": "serve", "profile": name},
    }))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", "render", "--spec", str(spec), "--profiles",
         str(profiles)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"task.profile {name!r}: {profiles / name}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_autoscaler_validates_and_follows_the_deployment() -> None:
    rendered = manifests(document("serve", replicas=2), IMAGE, autoscale=(6, 60))
    scaler = rendered[-1]
    kubernetes_validate.validate(scaler, KUBERNETES, strict=True)
    assert scaler["spec"]["scaleTargetRef"]["name"] == rendered[1]["metadata"]["name"]
    assert (scaler["spec"]["minReplicas"], scaler["spec"]["maxReplicas"]) == (2, 6)
    metric = scaler["spec"]["metrics"][0]["resource"]["target"]
    assert metric == {"type": "Utilization", "averageUtilization": 60}
    with pytest.raises(SpecError, match=r"--max-replicas 1: below task\.replicas"):
        manifests(document("serve", replicas=2), IMAGE, autoscale=(1, 60))


def test_render_with_a_profile_and_an_autoscaler(profiles: Path, tmp_path: Path) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({
        "function": {"name": "hello", "python_version": "PYTHON3_11",
                     "code_src": "https://code.local/main.py"},
        "task": {"action": "serve", "profile": "gpu"},
    }))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", "render", "--spec", str(spec), "--profiles",
         str(profiles), "--max-replicas", "4", "--output", str(tmp_path / "out")],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["configmap.yaml", "deployment.yaml", "horizontalpodautoscaler.yaml",
                     "service.yaml"]  # fmt: skip
    for path in (tmp_path / "out").iterdir():
        kubernetes_validate.validate(yaml.safe_load(path.read_text()), KUBERNETES, strict=True)
    deployment = yaml.safe_load((tmp_path / "out" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"

"""DigitalHub 0.15 task specs, as its SDK writes them (digitalhub 0.15.11,
`entities/task/_base/models.py`: flat resources, its four volume types, envs, secrets,
profile), through the real `fn-wrapper render`: every manifest valid offline, the fields that
matter checked, and bad values refused by name (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_kubernetes import KUBERNETES
from tests.deploy.test_nuclio import SCHEMA

FUNCTION = {
    "name": "sensors-etl",
    "kind": "python",
    "python_version": "PYTHON3_11",
    "source": {"source": "https://code.local/src/process.py", "handler": "process"},
}
PROFILES = {
    "gpu-small": {
        "resources": {"gpu": 1, "mem": "8Gi"},
        "node_selector": [{"key": "nvidia.com/gpu.present", "value": "true"}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
}
Manifest = dict[str, Any]


def render(tmp_path: Path, task: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    for name, fields in PROFILES.items():
        (profiles / f"{name}.yaml").write_text(yaml.safe_dump(fields))
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({"function": FUNCTION, "task": task}))
    command = [sys.executable, "-m", "wrapper", "render", "--spec", str(spec),
               "--profiles", str(profiles), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def rendered(tmp_path: Path, task: dict[str, Any], *args: str) -> list[Manifest]:
    """The manifests, each validated: Kubernetes' schemas (strict), or ours of Nuclio's."""
    result = render(tmp_path, task, *args)
    assert result.returncode == 0, result.stderr
    manifests = list(yaml.safe_load_all(result.stdout))
    for manifest in manifests:
        if manifest["kind"] == "NuclioFunction":
            jsonschema.Draft202012Validator(SCHEMA).validate(manifest)
        else:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    return manifests


def pod(manifests: list[Manifest]) -> dict[str, Any]:
    (workload,) = [m for m in manifests if m["kind"] in ("Job", "Deployment")]
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def volumes(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod(manifests)["volumes"]}


def resources(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return pod(manifests)["containers"][0]["resources"]  # type: ignore[no-any-return]


def flat_is_request_and_limit(manifests: list[Manifest]) -> None:
    both = {"cpu": "500m", "memory": "256Mi", "nvidia.com/gpu": "1", "ephemeral-storage": "2Gi"}
    assert resources(manifests) == {"requests": both, "limits": both}
    assert volumes(manifests)["scratch"] == {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}}


def ints_are_quantities(manifests: list[Manifest]) -> None:
    both = {"cpu": "2", "memory": "1073741824", "nvidia.com/gpu": "1"}
    assert resources(manifests) == {"requests": both, "limits": both}


def mapping_keeps_requests_and_limits(manifests: list[Manifest]) -> None:
    assert resources(manifests) == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    spec = pod(manifests)
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == [{"key": "pool", "operator": "Equal", "value": "batch",
                                    "effect": "NoSchedule"}]  # fmt: skip


def ephemeral_claims_its_size(manifests: list[Manifest]) -> None:
    template = volumes(manifests)["work"]["ephemeral"]["volumeClaimTemplate"]
    assert template["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = pod(manifests)["containers"][0]["volumeMounts"]
    assert {"name": "work", "mountPath": "/work"} in mounts


def shared_volume_is_an_existing_claim(manifests: list[Manifest]) -> None:
    assert volumes(manifests)["shared"]["persistentVolumeClaim"] == {"claimName": "shared"}
    assert [m["kind"] for m in manifests] == ["ConfigMap", "Deployment", "Service"]


def claim_with_a_size_is_new(manifests: list[Manifest]) -> None:
    template = volumes(manifests)["data"]["ephemeral"]["volumeClaimTemplate"]
    assert template["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


def empty_dir_is_sized(manifests: list[Manifest]) -> None:
    assert volumes(manifests)["cache"]["emptyDir"] == {"sizeLimit": "512Mi"}
    assert volumes(manifests)["ram"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}


def profile_fills_the_rest(manifests: list[Manifest]) -> None:
    assert resources(manifests) == {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }
    assert pod(manifests)["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod(manifests)["tolerations"][0]["key"] == "nvidia.com/gpu"


def envs_and_secrets(manifests: list[Manifest]) -> None:
    container = pod(manifests)["containers"][0]
    assert {"name": "S3_BUCKET", "value": "datalake"} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]


def serve_fields(manifests: list[Manifest]) -> None:
    deployment, service = manifests[1:]
    assert deployment["spec"]["replicas"] == 2
    assert (service["metadata"]["name"], service["spec"]["type"]) == ("sensors-api", "NodePort")


def nuclio_gets_the_same(manifests: list[Manifest]) -> None:
    (config,) = manifests
    spec = config["spec"]
    both = {"cpu": "500m", "memory": "256Mi"}
    assert spec["resources"] == {"requests": both, "limits": both}
    mounts = {v["volumeMount"]["mountPath"]: v["volume"] for v in spec["volumes"]}
    assert mounts["/tmp"]["emptyDir"] == {"sizeLimit": "1Gi"}
    claim = mounts["/work"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"] == {"requests": {"storage": "2Gi"}}
    assert mounts["/shared"]["persistentVolumeClaim"] == {"claimName": "shared"}


def volume(volume_type: str, name: str, spec: Any = None) -> dict[str, Any]:
    return {"volume_type": volume_type, "name": name, "mount_path": f"/{name}", "spec": spec}


FLAT = {"cpu": "500m", "mem": "256Mi", "gpu": 1, "disk": "2Gi"}
MAPPING = {
    "cpu": {"requests": "250m", "limits": "1"},
    "mem": {"requests": "512Mi", "limits": "1Gi"},
}
EMPTY_DIRS = [  # DigitalHub's SDK spells size_limit, its core reads sizeLimit
    volume("empty_dir", "cache", {"size_limit": "512Mi"}),
    volume("empty_dir", "ram", {"sizeLimit": "64Mi", "medium": "Memory"}),
]
CASES = [
    pytest.param({"action": "job", "resources": FLAT}, flat_is_request_and_limit, id="job-flat"),
    pytest.param({"action": "serve", "resources": FLAT}, flat_is_request_and_limit,
                 id="serve-flat"),
    pytest.param({"action": "job", "resources": {"cpu": 2, "mem": 1073741824, "gpu": 1}},
                 ints_are_quantities, id="job-ints"),
    pytest.param({"action": "job", "resources": MAPPING,
                  "node_selector": [{"key": "pool", "value": "batch"}],
                  "tolerations": [{"key": "pool", "value": "batch", "effect": "NoSchedule"}]},
                 mapping_keeps_requests_and_limits, id="job-mapping-placement"),
    pytest.param({"action": "job", "volumes": [volume("ephemeral", "work", {"size": "5Gi"})]},
                 ephemeral_claims_its_size, id="job-ephemeral"),
    pytest.param({"action": "serve", "volumes": [volume("ephemeral", "work", {"size": "5Gi"})]},
                 ephemeral_claims_its_size, id="serve-ephemeral"),
    pytest.param({"action": "serve",
                  "volumes": [volume("shared_volume", "shared", {"size": "10Gi"})]},
                 shared_volume_is_an_existing_claim, id="serve-shared-volume"),
    pytest.param({"action": "job",
                  "volumes": [volume("persistent_volume_claim", "data", {"size": "1Gi"})]},
                 claim_with_a_size_is_new, id="job-persistent-volume-claim"),
    pytest.param({"action": "job", "volumes": EMPTY_DIRS}, empty_dir_is_sized, id="job-empty-dir"),
    pytest.param({"action": "job", "profile": "gpu-small", "resources": {"cpu": "2"}},
                 profile_fills_the_rest, id="job-profile"),
    pytest.param({"action": "serve", "profile": "gpu-small", "resources": {"cpu": "2"}},
                 profile_fills_the_rest, id="serve-profile"),
    pytest.param({"action": "job", "envs": [{"name": "S3_BUCKET", "value": "datalake"}],
                  "secrets": ["s3-credentials"]}, envs_and_secrets, id="job-envs-secrets"),
    pytest.param({"action": "serve", "replicas": 2, "service_type": "NodePort",
                  "service_name": "sensors-api", "resources": {"cpu": "1"}},
                 serve_fields, id="serve-replicas-service"),
]  # fmt: skip
NUCLIO_TASK = {
    "action": "serve",
    "resources": {"cpu": "500m", "mem": "256Mi", "disk": "1Gi"},
    "volumes": [volume("ephemeral", "work", {"size": "2Gi"}), volume("shared_volume", "shared")],
}


@pytest.mark.parametrize(("task", "check"), CASES)
def test_a_digitalhub_task_renders_valid_manifests(
    tmp_path: Path, task: dict[str, Any], check: Callable[[list[Manifest]], None]
) -> None:
    check(rendered(tmp_path, task))


def test_a_digitalhub_serve_task_renders_for_nuclio(tmp_path: Path) -> None:
    nuclio_gets_the_same(rendered(tmp_path, NUCLIO_TASK, "--target", "nuclio"))


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"resources": {"cpu": "5 cores"}},
         "task.resources.cpu: '5 cores' is not a Kubernetes quantity"),
        ({"resources": {"mem": "256MB"}},
         "task.resources.mem: '256MB' is not a Kubernetes quantity"),
        ({"resources": {"gpu": "1.5"}}, "task.resources.gpu: '1.5' is not a whole number of GPUs"),
        ({"resources": {"cpu": True}},
         "task.resources.cpu: expected a Kubernetes quantity such as 500m, 2 or 1Gi, or"),
        ({"resources": {"disk": "-1Gi"}}, "task.resources.disk: '-1Gi' is not a Kubernetes"),
        ({"resources": {"disk": 0}}, "task.resources.disk: 0 is not a size: give more than 0"),
        ({"resources": "big"}, "task.resources: expected a mapping, got str 'big'"),
        ({"resources": {"memory": "1Gi"}}, "task.resources.memory: unknown field (allowed: cpu,"
         " mem, gpu, disk)"),
        ({"volumes": [volume("ephemeral", "work")]},
         "task.volumes[0].spec: an ephemeral volume needs a size (e.g. size: 1Gi)"),
        ({"volumes": [volume("shared_volume", "shared", {"size": "ten gigs"})]},
         "task.volumes[0].spec: 'ten gigs' is not a Kubernetes quantity"),
        ({"volumes": [volume("persistent_volume_claim", "data",
                             {"claim_name": "data", "size": "1Gi"})]},
         "task.volumes[0].spec: give claim_name (an existing claim) or size"),
        ({"volumes": [volume("empty_dir", "cache", {"medium": "Disk"})]},
         "task.volumes[0].spec: medium 'Disk' is not one of '', Memory"),
        ({"volumes": [volume("empty_dir", "cache", {"size": "1Gi"})]},
         "task.volumes[0].spec: 'size' is not an option of empty_dir volumes (allowed:"),
        ({"volumes": [volume("nfs", "data")]},
         "task.volumes[0].volume_type: 'nfs' is not one of persistent_volume_claim, empty_dir,"
         " ephemeral, shared_volume, config_map, secret"),
        ({"service_type": "ExternalName"},
         "task.service_type: 'ExternalName' is not one of ClusterIP, NodePort, LoadBalancer"),
        ({"profile": "missing"}, "task.profile 'missing': no missing.yaml or missing.json in"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_by_name(tmp_path: Path, task: dict[str, Any], message: str) -> None:
    result = render(tmp_path, {"action": "serve", **task})
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""

"""Kubernetes manifests rendered from validated run specs, each validated offline against the
Kubernetes API schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from wrapper.deploy.kubernetes import manifests
from wrapper.errors import SpecError
from wrapper.spec.document import validate_document

KUBERNETES = "1.30"
IMAGE = "registry.local/fn-wrapper-base:0.1.0-python3.11"

TASK_FIELDS: dict[str, dict[str, Any]] = {
    "nothing": {},
    "resources": {
        "resources": {
            "cpu": {"requests": "250m", "limits": "1"},
            "mem": {"requests": "256Mi", "limits": "1Gi"},
            "gpu": {"limits": "1"},
        }
    },
    "flat resources": {"resources": {"cpu": "500m", "mem": "256Mi", "gpu": 1, "disk": "2Gi"}},
    "envs": {"envs": [{"name": "MODE", "value": "fast"}]},
    "secrets": {"secrets": ["db-credentials", "s3-keys"]},
    "volumes": {
        "volumes": [
            {
                "volume_type": "persistent_volume_claim",
                "name": "data",
                "mount_path": "/data",
                "spec": {"claim_name": "data-pvc"},
            },
            {
                "volume_type": "empty_dir",
                "name": "work",
                "mount_path": "/work",
                "spec": {"sizeLimit": "1Gi"},
            },
            {"volume_type": "config_map", "name": "settings", "mount_path": "/settings"},
            {
                "volume_type": "secret",
                "name": "certs",
                "mount_path": "/certs",
                "spec": {"secret_name": "tls-certs"},
            },
        ]
    },
    "digitalhub volumes": {
        "volumes": [
            {
                "volume_type": "ephemeral",
                "name": "work",
                "mount_path": "/work",
                "spec": {"size": "5Gi"},
            },
            {
                "volume_type": "shared_volume",
                "name": "team",
                "mount_path": "/team",
                "spec": {"size": "10Gi"},
            },
            {
                "volume_type": "persistent_volume_claim",
                "name": "data",
                "mount_path": "/data",
                "spec": {"size": "1Gi"},
            },
            {
                "volume_type": "empty_dir",
                "name": "cache",
                "mount_path": "/cache",
                "spec": {"size_limit": "512Mi", "medium": "Memory"},
            },
        ]
    },
    "node_selector": {"node_selector": [{"key": "pool", "value": "gpu"}]},
    "affinity": {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        }
    },
    "tolerations": {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    "service": {"replicas": 3, "service_type": "NodePort", "service_name": "hello-web"},
}


def document(action: str, code_src: str = "https://code.local/main.py", **task: Any) -> dict:
    data = {
        "function": {"name": "Hello", "python_version": "PYTHON3_11", "code_src": code_src},
        "task": {"action": action, **task},
        "run": {"parameters": {"n": 1}},
    }
    return validate_document(data).model_dump(mode="json")  # type: ignore[no-any-return]


@pytest.mark.parametrize("code_src", ["https://code.local/main.py", "main.py"])
@pytest.mark.parametrize("action", ["serve", "job"])
@pytest.mark.parametrize("field", sorted(TASK_FIELDS))
def test_every_manifest_validates_for_each_task_field(
    action: str, field: str, code_src: str
) -> None:
    """Fetched code (a ConfigMap carries the run spec) and code in the image (none)."""
    rendered = manifests(document(action, code_src, **TASK_FIELDS[field]), IMAGE)
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    kinds = [m["kind"] for m in rendered]
    config_map = ["ConfigMap"] if "://" in code_src else []
    assert kinds == config_map + (["Deployment", "Service"] if action == "serve" else ["Job"])
    pod = rendered[len(config_map)]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]


def test_serve_probes_scraping_and_grace() -> None:
    config, deployment, service = manifests(document("serve", **TASK_FIELDS["service"]), IMAGE)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "admin"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8082"
    assert pod["terminationGracePeriodSeconds"] == 35  # the serve door's 30 s, and a margin
    assert deployment["spec"]["replicas"] == 3
    assert (service["metadata"]["name"], service["spec"]["type"]) == ("hello-web", "NodePort")
    assert json.loads(config["data"]["run.json"])["run"]["parameters"] == {"n": 1}


def test_the_grace_period_follows_the_graceful_timeout_in_task_envs() -> None:
    envs = [{"name": "FN_WRAPPER_GRACEFUL_TIMEOUT", "value": "120.5"}]
    deployment = manifests(document("serve", envs=envs), IMAGE)[1]
    kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 126
    envs = [{"name": "FN_WRAPPER_GRACEFUL_TIMEOUT", "value": "soon"}]
    with pytest.raises(SpecError, match=r"task\.envs\[0\]: FN_WRAPPER_GRACEFUL_TIMEOUT 'soon'"):
        manifests(document("serve", envs=envs), IMAGE)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "86400"])
def test_a_graceful_timeout_the_serve_door_refuses_is_refused(value: str) -> None:
    """The serve door takes more than 0 seconds (`--graceful-timeout`); a grace period is a
    whole number of seconds, at most a day here."""
    envs = [{"name": "MODE", "value": "x"}, {"name": "FN_WRAPPER_GRACEFUL_TIMEOUT", "value": value}]
    with pytest.raises(SpecError, match=rf"task\.envs\[1\]: FN_WRAPPER_GRACEFUL_TIMEOUT '{value}'"):
        manifests(document("serve", envs=envs), IMAGE)


def test_the_job_fails_with_its_run() -> None:
    _, job = manifests(document("job"), IMAGE)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["fn-wrapper", "job"]


def test_task_fields_are_mapped_faithfully() -> None:
    task = {**TASK_FIELDS["resources"], **TASK_FIELDS["secrets"], **TASK_FIELDS["node_selector"]}
    pod = manifests(document("job", **task), IMAGE)[1]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
    }
    assert container["envFrom"] == [
        {"secretRef": {"name": "db-credentials"}}, {"secretRef": {"name": "s3-keys"}},
    ]  # fmt: skip
    assert pod["nodeSelector"] == {"pool": "gpu"}


def test_disk_sizes_the_scratch_volume() -> None:
    """The scratch emptyDir's sizeLimit, and the container's ephemeral-storage request (the
    scheduler finds room for it) and limit (the kubelet evicts past it)."""
    task = {"resources": {"cpu": "1", "disk": "2Gi"}}
    pod = manifests(document("job", **task), IMAGE)[1]["spec"]["template"]["spec"]
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}} in pod["volumes"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "ephemeral-storage": "2Gi"},
        "limits": {"cpu": "1", "ephemeral-storage": "2Gi"},
    }
    pod = manifests(document("job"), IMAGE)[1]["spec"]["template"]["spec"]
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]


def test_volumes_in_kubernetes_shapes() -> None:
    pod = manifests(document("job", **TASK_FIELDS["digitalhub volumes"]), IMAGE)[1]
    volumes = {v["name"]: v for v in pod["spec"]["template"]["spec"]["volumes"]}
    claim = {
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": "5Gi"}},
    }
    assert volumes["work"]["ephemeral"] == {"volumeClaimTemplate": {"spec": claim}}
    assert volumes["team"]["persistentVolumeClaim"] == {"claimName": "team"}
    storage = volumes["data"]["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]
    assert storage == {"requests": {"storage": "1Gi"}}  # a new claim for the run
    assert volumes["cache"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "512Mi"}
    # our spellings: an existing claim, the camelCase sizeLimit
    pod = manifests(document("job", **TASK_FIELDS["volumes"]), IMAGE)[1]
    volumes = {v["name"]: v for v in pod["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "data-pvc"}
    assert volumes["work"]["emptyDir"] == {"sizeLimit": "1Gi"}


def test_code_in_the_image_needs_no_config_map() -> None:
    rendered = manifests(document("serve", code_src="main.py"), IMAGE)
    assert [m["kind"] for m in rendered] == ["Deployment", "Service"]
    container = rendered[0]["spec"]["template"]["spec"]["containers"][0]
    assert all(e["name"] != "FN_WRAPPER_SPEC" for e in container["env"])


@pytest.mark.parametrize("action", ["serve", "job"])
def test_code_in_the_image_still_gets_the_run(action: str) -> None:
    """The image has the code and its function; the run's inputs, parameters and init
    parameters come with the pod, as the env twins the doors merge over the image's spec."""
    data = document(action, code_src="main.py")
    data["run"].update(inputs={"data": "store://p/dataitem/d"}, init_parameters={"m": "x"})
    pod = manifests(data, IMAGE)[0]["spec"]["template"]["spec"]
    kubernetes_validate.validate(manifests(data, IMAGE)[0], KUBERNETES, strict=True)
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert json.loads(env["FN_WRAPPER_INPUTS"]) == {"data": "store://p/dataitem/d"}
    assert json.loads(env["FN_WRAPPER_PARAMETERS"]) == {"n": 1}
    assert json.loads(env["FN_WRAPPER_INIT_PARAMETERS"]) == {"m": "x"}


def test_a_job_of_code_in_the_image_runs_with_the_runs_inputs(tmp_path: Path) -> None:
    """`render --action job --inputs … --image X` of a local code_src."""
    (tmp_path / "main.py").write_text("def handler(data, n):\n    return n\n")
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({
        "function": {"name": "hello", "python_version": "PYTHON3_11", "code_src": "main.py"},
        "run": {"parameters": {"n": 2}},
    }))  # fmt: skip
    command = [sys.executable, "-m", "wrapper", "render", "--spec", str(spec), "--action", "job",
               "--inputs", '{"data": "store://p/dataitem/d"}', "--image", IMAGE]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (job,) = yaml.safe_load_all(result.stdout)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["FN_WRAPPER_INPUTS"]) == {"data": "store://p/dataitem/d"}
    assert json.loads(env["FN_WRAPPER_PARAMETERS"]) == {"n": 2}


def test_the_config_map_is_named_by_its_content() -> None:
    """Another spec is another ConfigMap (a second job never reads the first one's spec) and
    another pod template (`kubectl apply` rolls the Deployment)."""
    first = manifests(document("serve"), IMAGE)
    data = document("serve")
    data["run"]["parameters"] = {"n": 2}
    second = manifests(data, IMAGE)
    names = []
    for config, deployment, _ in (first, second):
        name = config["metadata"]["name"]
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert {"name": "spec", "configMap": {"name": name}} in volumes
        assert re.fullmatch(r"hello-spec-[0-9a-f]{10}", name)
        names.append(name)
    assert names[0] != names[1]
    assert first[0] == manifests(document("serve"), IMAGE)[0]  # the same spec, the same name
    assert first[1]["spec"]["template"] != second[1]["spec"]["template"]


def test_a_long_function_name_keeps_the_config_map_name_a_dns_label() -> None:
    data = document("job")
    data["function"]["name"] = "A_Very_Long_Function_Name_" * 4
    config, job = manifests(data, IMAGE)
    name = config["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name)
    for manifest in (config, job):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_inline_code_with_a_path_is_not_in_the_image() -> None:
    """DigitalHub sends base64 with the code's original path: the run spec must carry it."""
    data = {
        "function": {"name": "hello", "python_version": "PYTHON3_11", "code_src": "app/main.py",
                     "code": "def handler(context, event):\n    return 1\n"},
        "task": {"action": "job"},
    }  # fmt: skip
    rendered = manifests(validate_document(data).model_dump(mode="json"), IMAGE)
    assert [m["kind"] for m in rendered] == ["ConfigMap", "Job"]


def test_credentials_in_a_code_url_are_refused() -> None:
    with pytest.raises(SpecError, match="code_src: credentials in the URL"):
        manifests(document("serve", code_src="https://user:s3cr3t@git.local/x.py"), IMAGE)


def test_render_command_and_a_malformed_task_field(tmp_path: Path) -> None:
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({
        "function": {"name": "hello", "python_version": "PYTHON3_11",
                     "code_src": "https://code.local/main.py"},
        "task": {"action": "serve", "secrets": ["api-token"],
                 "envs": [{"name": "A", "value": "b"}]},
    }))  # fmt: skip
    command = [sys.executable, "-m", "wrapper", "render", "--spec", str(spec)]
    result = subprocess.run(command, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    rendered = list(yaml.safe_load_all(result.stdout))
    assert [m["kind"] for m in rendered] == ["ConfigMap", "Deployment", "Service"]
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    spec.write_text(yaml.safe_dump({
        "function": {"name": "hello", "python_version": "PYTHON3_11", "code_src": "x.py"},
        "task": {"action": "job", "resources": {"cpu": {"limits": "lots"}}},
    }))  # fmt: skip
    bad = subprocess.run(command, capture_output=True, timeout=60)
    assert bad.returncode == 2
    assert b"task.resources.cpu.limits" in bad.stderr and b"lots" in bad.stderr

"""Kubernetes manifests of a run (DESIGN §9): serve → a Deployment and a Service, job → a Job.

Code the image cannot fetch (a local code_src) is taken to be in the image with its run spec,
as `fn-wrapper build` makes them: the run's inputs, parameters and init parameters then reach
the container as the environment twins of their flags (merged over the image's spec).
Otherwise a ConfigMap carries the run spec (FN_WRAPPER_SPEC) and the container fetches the code
when it starts; the ConfigMap's name ends with a hash of its content, so a changed spec is a
new ConfigMap (and a new pod template), never an old one reused.

The task's fields map onto the pod: resources (gpu as nvidia.com/gpu; disk sizes the scratch
volume and is the container's ephemeral-storage), envs, secrets (as references: `envFrom` of
each named secret, never a value), volumes, node selector, affinity, tolerations. Pods are
restricted by default: non-root, no privilege escalation, every capability dropped, a read-only
root filesystem with a writable scratch volume at /tmp.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Optional

from wrapper.errors import SpecError
from wrapper.settings import GRACEFUL_TIMEOUT
from wrapper.settings import seconds as serve_seconds  # the serve door's own rule
from wrapper.sources.uri import has_credentials
from wrapper.spec.models import SCRATCH_MOUNT as SCRATCH
from wrapper.spec.models import SPEC_MOUNT as SPEC_DIR

PORT, ADMIN_PORT = 8080, 8082
MAX_GRACEFUL_TIMEOUT = 86400
"""A day: longer graceful timeouts are refused (a pod's grace period is a whole number)."""
GRACE_MARGIN = 5
"""Seconds a pod gets past the serve door's graceful timeout before it is killed."""

Manifest = dict[str, Any]
RUN_TWINS = ("inputs", "parameters", "init_parameters")
"""Run fields with a flag (and so an environment twin, FN_WRAPPER_<FIELD>) the doors merge over
their spec's."""


class Workload:
    """The parts every manifest of one run shares."""

    def __init__(self, document: dict[str, Any], image: str, code_in_place: bool = False) -> None:
        """`code_in_place`: the container has the code where its handler is imported from
        (Nuclio's build copies it), so no run spec carries it."""
        function, self.task = document["function"], document["task"]
        source = function["source"]
        _no_credentials(function)
        self.name = dns_label(function["name"])
        self.image = image
        self.run = document["run"]
        code_given = code_in_place or in_image(source)
        self.spec = None if code_given else {"function": function, "run": self.run}
        self.spec_json = json.dumps(self.spec, indent=2, sort_keys=True)
        digest = hashlib.sha256(self.spec_json.encode()).hexdigest()[:10]
        self.config_map_name = f"{self.name}-spec-{digest}"
        """Changes with the run spec: `kubectl apply` rolls the pods, a job never reads an old
        spec (at most 40 + 16 characters, a DNS label)."""

    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/managed-by": "fn-wrapper"}

    def config_map(self) -> list[Manifest]:
        if self.spec is None:
            return []
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": self.config_map_name, "labels": self.labels()},
                "data": {"run.json": self.spec_json},
            }
        ]

    def run_env(self) -> list[dict[str, str]]:
        """For code in the image: the run's fields as the environment twins of their flags,
        merged by the doors over the spec the image has (its code, handler, init function)."""
        if self.spec is not None:
            return []
        return [
            {"name": f"FN_WRAPPER_{field.upper()}", "value": json.dumps(value, sort_keys=True)}
            for field, value in sorted(self.run.items())
            if field in RUN_TWINS and value
        ]

    def container(self, args: list[str]) -> dict[str, Any]:
        task = self.task
        env = [{"name": "FN_WRAPPER_SPEC", "value": f"{SPEC_DIR}/run.json"}] if self.spec else []
        env += self.run_env()
        env += [
            {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH}/cache"},
            {"name": "XDG_DATA_HOME", "value": f"{SCRATCH}/data"},
            *env_items(task),
        ]
        mounts = [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}] if self.spec else []
        mounts += [
            {"name": "scratch", "mountPath": SCRATCH},
            *({"name": v["name"], "mountPath": v["mount_path"]} for v in task.get("volumes") or []),
        ]
        container: dict[str, Any] = {
            "name": "function",
            "image": self.image,
            "args": args,
            "env": env,
            "volumeMounts": mounts,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        resources = container_resources(task.get("resources") or {})
        disk = (task.get("resources") or {}).get("disk")
        if disk is not None:  # what the scratch volume may hold, on the node's disk
            for side in ("requests", "limits"):
                resources.setdefault(side, {})["ephemeral-storage"] = disk
        if resources:
            container["resources"] = resources
        if task.get("secrets"):
            container["envFrom"] = [{"secretRef": {"name": name}} for name in task["secrets"]]
        return container

    def pod(self, container: dict[str, Any]) -> dict[str, Any]:
        task = self.task
        volumes = (
            [{"name": "spec", "configMap": {"name": self.config_map_name}}] if self.spec else []
        )
        volumes += [scratch_volume(task), *map(pod_volume, task.get("volumes") or [])]
        return {
            "containers": [container],
            "volumes": volumes,
            "securityContext": {"runAsNonRoot": True, "fsGroup": 1000},
            **placement(task),
        }


def manifests(
    document: dict[str, Any], image: str, autoscale: Optional[tuple[int, int]] = None
) -> list[Manifest]:
    """The manifests of the document's task action (serve or job), in apply order; for serve,
    with `autoscale` (maximum replicas, target CPU %), a HorizontalPodAutoscaler too."""
    workload = Workload(document, image)
    action = document["task"]["action"]
    if action == "serve":
        scaler = [] if autoscale is None else [_autoscaler(workload, *autoscale)]
        return [*workload.config_map(), *_serve(workload), *scaler]
    if action == "job":
        return [*workload.config_map(), _job(workload)]
    raise SpecError("task.action 'build': render a build with `fn-wrapper build --builder kaniko`")


def _serve(workload: Workload) -> list[Manifest]:
    args = ["fn-wrapper", "serve", "--port", str(PORT), "--admin-port", str(ADMIN_PORT)]
    container = workload.container(args)
    container["ports"] = [
        {"name": "http", "containerPort": PORT},
        {"name": "admin", "containerPort": ADMIN_PORT},
    ]
    container["readinessProbe"] = _probe("/ready", 5)
    container["livenessProbe"] = _probe("/live", 15)
    pod = workload.pod(container)
    pod["terminationGracePeriodSeconds"] = math.ceil(graceful_timeout(workload.task)) + GRACE_MARGIN
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ADMIN_PORT),
        "prometheus.io/path": "/metrics",
    }
    task, name = workload.task, workload.name
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": workload.labels()},
        "spec": {
            "replicas": 1 if task.get("replicas") is None else task["replicas"],
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": workload.labels(), "annotations": scrape},
                "spec": pod,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": task.get("service_name") or name, "labels": workload.labels()},
        "spec": {
            "type": task.get("service_type") or "ClusterIP",
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    return [deployment, service]


def check_max_replicas(maximum: int, task: dict[str, Any]) -> int:
    """`--max-replicas` against the task's replicas (at least 1, the least an autoscaler
    keeps): the minimum it scales from."""
    minimum = task.get("replicas") or 1
    if maximum < minimum:
        raise SpecError(f"--max-replicas {maximum}: below task.replicas ({minimum})")
    return int(minimum)


def _autoscaler(workload: Workload, maximum: int, cpu: int) -> Manifest:
    minimum = check_max_replicas(maximum, workload.task)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": workload.name, "labels": workload.labels()},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": workload.name,
            },
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            ],
        },
    }


def _job(workload: Workload) -> Manifest:
    pod = workload.pod(workload.container(["fn-wrapper", "job"]))
    pod["restartPolicy"] = "Never"  # the container's exit code is the run's outcome
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": f"{workload.name}-", "labels": workload.labels()},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 86400,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": workload.labels()}, "spec": pod},
        },
    }


def placement(task: dict[str, Any]) -> dict[str, Any]:
    """Where pods may run: node selector (from `{key, value}` items), affinity, tolerations."""
    found: dict[str, Any] = {}
    if task.get("node_selector"):
        found["nodeSelector"] = {item["key"]: item["value"] for item in task["node_selector"]}
    affinity = _given(task.get("affinity") or {})
    if affinity:
        found["affinity"] = affinity
    if task.get("tolerations"):
        found["tolerations"] = [_given(toleration) for toleration in task["tolerations"]]
    return found


def env_items(task: dict[str, Any]) -> list[dict[str, Any]]:
    """task.envs as a container's env: `value`, or `valueFrom` (a Kubernetes EnvVarSource)."""
    return [
        {"name": e["name"], "value": e["value"]}
        if e.get("value") is not None
        else {"name": e["name"], "valueFrom": e["value_from"]}
        for e in task.get("envs") or []
    ]


def graceful_timeout(task: dict[str, Any]) -> float:
    """The serve door's graceful timeout in this task's container: FN_WRAPPER_GRACEFUL_TIMEOUT
    from task.envs, else the default."""
    for number, env in enumerate(task.get("envs") or []):
        if env["name"] == "FN_WRAPPER_GRACEFUL_TIMEOUT" and env.get("value") is not None:
            field = f"task.envs[{number}]: FN_WRAPPER_GRACEFUL_TIMEOUT"
            try:
                seconds = serve_seconds(env["value"])
            except ValueError as exc:
                raise SpecError(f"{field} {exc} (the serve door would not start)") from None
            if not seconds < MAX_GRACEFUL_TIMEOUT:
                raise SpecError(
                    f"{field} {env['value']!r} must be less than {MAX_GRACEFUL_TIMEOUT} seconds"
                )
            return seconds
    return GRACEFUL_TIMEOUT


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def container_resources(resources: dict[str, Any]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for field, key in (("cpu", "cpu"), ("mem", "memory"), ("gpu", "nvidia.com/gpu")):
        for side in ("requests", "limits"):
            value = (resources.get(field) or {}).get(side)
            if value is not None:
                found.setdefault(side, {})[key] = str(value)
    return found


def scratch_volume(task: dict[str, Any]) -> dict[str, Any]:
    """The pod's scratch emptyDir (mounted at /tmp), sized by task.resources.disk if given."""
    disk = (task.get("resources") or {}).get("disk")
    return {"name": "scratch", "emptyDir": {} if disk is None else {"sizeLimit": disk}}


def pod_volume(volume: dict[str, Any]) -> dict[str, Any]:
    """The pod volume of a task volume (its spec's options validated by wrapper.spec.models).

    A shared volume, or a persistent_volume_claim without a size, is an existing claim (a
    shared volume's size is that claim's: DigitalHub's core reads none). An ephemeral volume,
    or a persistent_volume_claim with a size, is a new claim made with the pod and deleted with
    it: a generic ephemeral volume.
    """
    spec, name, kind = volume.get("spec") or {}, volume["name"], volume["volume_type"]
    if kind == "shared_volume" or (kind == "persistent_volume_claim" and "size" not in spec):
        return {"name": name, "persistentVolumeClaim": {"claimName": spec.get("claim_name", name)}}
    if kind in ("persistent_volume_claim", "ephemeral"):
        claim = {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": spec["size"]}},
        }
        return {"name": name, "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}
    if kind == "empty_dir":
        options = {"medium": spec["medium"]} if "medium" in spec else {}
        if "size_limit" in spec:
            options["sizeLimit"] = spec["size_limit"]
        return {"name": name, "emptyDir": options}
    if kind == "config_map":
        return {"name": name, "configMap": {"name": spec.get("name", name)}}
    return {"name": name, "secret": {"secretName": spec.get("secret_name", name)}}


def _probe(path: str, period: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "admin"}, "periodSeconds": period}


def in_image(source: dict[str, Any]) -> bool:
    """A local code_src: the code (and its run spec) are in the image."""
    code_src = source.get("code_src")
    inline = source.get("code") is not None or source.get("base64") is not None
    return isinstance(code_src, str) and bool(code_src) and "://" not in code_src and not inline


def _no_credentials(function: dict[str, Any]) -> None:
    """Refuse URLs with credentials (user:token@host) where the manifests would carry them."""
    fields = {"function.source.code_src": function["source"].get("code_src")}
    fields.update(
        {f"function.requirements[{n}]": r for n, r in enumerate(function["requirements"])}
    )
    for field, value in fields.items():
        if isinstance(value, str) and has_credentials(value):
            raise SpecError(
                f"{field}: credentials in the URL would be written into the manifests: give"
                " them through a secret (task.secrets)"
            )


def dns_label(name: str) -> str:
    """`name` as a Kubernetes label value and name part: lower case, letters, digits and
    dashes, at most 40 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40].strip("-")
    return label or "function"

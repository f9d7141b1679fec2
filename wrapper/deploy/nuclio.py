"""A Nuclio function configuration (function.yaml) for the serve action (DESIGN §9).

Nuclio builds the function's processor image on the fn-wrapper image (`spec.build.baseImage`:
its build adds the `processor` binary and Nuclio's Python wrapper); the processor then runs
fn-wrapper in place of that wrapper (NUCLIO_PYTHON_WRAPPER_PATH), with the run spec inline
(FN_WRAPPER_SPEC) unless the code is in the image. `spec.image` is left to Nuclio: it names the
built processor image.

Task fields map as for Kubernetes (wrapper/deploy/kubernetes.py), in Nuclio's shapes: env
items, secrets mounted as volumes, `{volume, volumeMount}` pairs, replicas as min/max replicas,
workers as the HTTP trigger's maxWorkers.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional

from wrapper.deploy.kubernetes import (
    Workload,
    container_resources,
    dns_label,
    placement,
    pod_volume,
)
from wrapper.errors import SpecError

SECRETS_DIR = "/var/run/secrets/fn-wrapper"
SOURCE_STUB = "# fn-wrapper loads the code from the run spec (FN_WRAPPER_SPEC) or the image.\n"
"""The source file Nuclio's build copies to /opt/nuclio: the code itself comes with the run
spec (fetched when the container starts) or is in the image."""


def entry_path(python_version: str) -> str:
    """Where the base image has the entry file Nuclio's processor runs."""
    dotted = python_version.removeprefix("PYTHON").replace("_", ".")
    return f"/opt/fn-wrapper/lib/python{dotted}/site-packages/wrapper/nuclio/entry.py"


def function_config(
    document: dict[str, Any],
    image: str,
    workers: int = 1,
    autoscale: Optional[tuple[int, int]] = None,
) -> dict[str, Any]:
    """The NuclioFunction document of a serve run, built on `image`; with `autoscale`
    (maximum replicas, target CPU %), scaled between task.replicas and that maximum."""
    function, task = document["function"], document["task"]
    if task["action"] != "serve":
        raise SpecError(f"--target nuclio: task.action {task['action']!r}: Nuclio serves (serve)")
    workload = Workload(document, image)
    env = [{"name": "NUCLIO_PYTHON_WRAPPER_PATH", "value": entry_path(function["python_version"])}]
    if workload.spec is not None:
        env.append({"name": "FN_WRAPPER_SPEC", "value": json.dumps(workload.spec, sort_keys=True)})
    env += [{"name": e["name"], "value": e["value"]} for e in task.get("envs") or []]
    volumes = [
        {"volume": pod_volume(v), "volumeMount": {"name": v["name"], "mountPath": v["mount_path"]}}
        for v in task.get("volumes") or []
    ]
    for secret in task.get("secrets") or []:
        name = dns_label(f"secret-{secret}")
        volumes.append(
            {
                "volume": {"name": name, "secret": {"secretName": secret}},
                "volumeMount": {
                    "name": name,
                    "mountPath": f"{SECRETS_DIR}/{secret}",
                    "readOnly": True,
                },
            }
        )
    minimum = 1 if task.get("replicas") is None else task["replicas"]
    maximum = max(minimum, 1)
    if autoscale is not None:
        maximum = autoscale[0]
        if maximum < max(minimum, 1):
            raise SpecError(f"--max-replicas {maximum}: below task.replicas ({minimum})")
    spec: dict[str, Any] = {
        "description": function.get("description") or f"{function['name']} (fn-wrapper)",
        "runtime": f"python:{function['python_version'].removeprefix('PYTHON').replace('_', '.')}",
        "handler": _nuclio_handler(function["source"]),
        "build": {
            "baseImage": image,
            "codeEntryType": "sourceCode",
            "functionSourceCode": base64.b64encode(SOURCE_STUB.encode()).decode(),
        },
        "env": env,
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "triggers": {"http": {"kind": "http", "maxWorkers": workers}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
    }
    if autoscale is not None:
        spec["targetCPU"] = autoscale[1]
    resources = container_resources(task.get("resources") or {})
    if resources:
        spec["resources"] = resources
    if volumes:
        spec["volumes"] = volumes
    spec.update(placement(task))
    return {
        "apiVersion": "nuclio.io/v1",
        "kind": "NuclioFunction",
        "metadata": {"name": workload.name, "labels": workload.labels()},
        "spec": spec,
    }


def _nuclio_handler(source: dict[str, Any]) -> str:
    """Nuclio's module:function form of the handler (it passes it to the wrapper)."""
    handler = str(source.get("handler") or "handler")
    if ":" in handler:
        return handler
    code_src = str(source.get("code_src") or "")
    name = code_src.rsplit("/", 1)[-1]
    module = name[:-3] if name.endswith(".py") else "main"
    return f"{module}:{handler}"

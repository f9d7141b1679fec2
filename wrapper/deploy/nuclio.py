"""A Nuclio function configuration (function.yaml) for the serve action (DESIGN §9).

Nuclio builds the function's processor image on the fn-wrapper image (`spec.build.baseImage`:
its build adds the `processor` binary and Nuclio's Python wrapper); the processor then runs
fn-wrapper in place of that wrapper (NUCLIO_PYTHON_WRAPPER_PATH), with the run spec inline
(FN_WRAPPER_SPEC) unless the code is in the image. `spec.image` is left to Nuclio: it names the
built processor image.

Task fields map as for Kubernetes (wrapper/deploy/kubernetes.py), in Nuclio's shapes: env
items, secrets mounted as volumes, `{volume, volumeMount}` pairs, replicas as min/max replicas,
workers as the HTTP trigger's numWorkers (maxWorkers is deprecated since Nuclio 1.13). Nuclio's
root filesystem is writable, so a scratch volume is mounted only to size it (task.resources.disk).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from pathlib import PurePosixPath
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from wrapper.deploy.kubernetes import (
    Workload,
    check_max_replicas,
    container_resources,
    dns_label,
    env_items,
    in_image,
    placement,
    pod_volume,
    scratch_volume,
)
from wrapper.errors import SpecError
from wrapper.sources.inline import inline_file_name
from wrapper.spec.models import SCRATCH_MOUNT as SCRATCH
from wrapper.spec.models import PythonVersion

SECRETS_DIR = "/var/run/secrets/fn-wrapper"
SOURCE_STUB = "# fn-wrapper loads the code from the run spec (FN_WRAPPER_SPEC) or the image.\n"
"""The source file Nuclio's build copies to /opt/nuclio: the code itself comes with the run
spec (fetched when the container starts) or is in the image."""
NUCLIO_PYTHONS = ("3.10", "3.11", "3.12")
"""The Python runtimes (`python:3.X`) Nuclio's function configuration documents (its build
ships the processor's wheels for these only)."""


def entry_path(python_version: str) -> str:
    """Where the base image has the entry file Nuclio's processor runs."""
    dotted = PythonVersion(python_version).version
    return f"/opt/fn-wrapper/lib/python{dotted}/site-packages/wrapper/nuclio/entry.py"


def function_config(
    document: dict[str, Any],
    image: str,
    workers: int = 1,
    autoscale: Optional[tuple[int, int]] = None,
    image_given: bool = True,
) -> dict[str, Any]:
    """The NuclioFunction document of a serve run, built on `image`; with `autoscale`
    (maximum replicas, target CPU %), scaled between task.replicas and that maximum.

    A document read from a Nuclio config (its `nuclio` section) gets back its triggers,
    labels, annotations, namespace and event timeout. Without an image of its own
    (`image_given` false: the base image), its code comes as the config had Nuclio bring it
    (its code entry, or `nuctl deploy --path`), and the requirements and build instructions
    become Nuclio build steps.
    """
    function, task = document["function"], document["task"]
    if task["action"] != "serve":
        raise SpecError(f"--target nuclio: task.action {task['action']!r}: Nuclio serves (serve)")
    section = document.get("nuclio")
    runtime = nuclio_runtime(function["python_version"])
    native = section is not None and not image_given and _nuclio_brings_code(document)
    workload = Workload(document, image, code_in_place=native)
    env = [{"name": "NUCLIO_PYTHON_WRAPPER_PATH", "value": entry_path(function["python_version"])}]
    if workload.spec is not None:
        env.append({"name": "FN_WRAPPER_SPEC", "value": json.dumps(workload.spec, sort_keys=True)})
    env += workload.run_env()
    volumes = [
        {"volume": pod_volume(v), "volumeMount": {"name": v["name"], "mountPath": v["mount_path"]}}
        for v in task.get("volumes") or []
    ]
    if (task.get("resources") or {}).get("disk") is not None:
        scratch = scratch_volume(task)
        volumes.insert(
            0, {"volume": scratch, "volumeMount": {"name": "scratch", "mountPath": SCRATCH}}
        )
        env += [
            {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH}/cache"},
            {"name": "XDG_DATA_HOME", "value": f"{SCRATCH}/data"},
        ]
    env += [item for item in env_items(task) if item["name"] not in {e["name"] for e in env}]
    for secret in task.get("secrets") or []:
        name = secret_volume_name(secret)
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
        check_max_replicas(maximum, task)
    build: dict[str, Any] = {"baseImage": image}
    if native:
        build.update((section or {}).get("code_entry") or {})
    else:
        build["codeEntryType"] = "sourceCode"
        build["functionSourceCode"] = base64.b64encode(SOURCE_STUB.encode()).decode()
    if not image_given:
        build.update(_build_steps(function, task))
    spec: dict[str, Any] = {
        "description": function.get("description") or f"{function['name']} (fn-wrapper)",
        "runtime": runtime,
        "handler": _nuclio_handler(function["source"]),
        "build": build,
        "env": env,
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "triggers": _triggers(section or {}, workers),
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
    if task.get("service_type"):
        spec["serviceType"] = task["service_type"]
    metadata: dict[str, Any] = {"name": workload.name, "labels": workload.labels()}
    if section is not None:
        _from_config(section, function, spec, metadata)
    return {
        "apiVersion": "nuclio.io/v1",
        "kind": "NuclioFunction",
        "metadata": metadata,
        "spec": spec,
    }


def _nuclio_brings_code(document: dict[str, Any]) -> bool:
    """The source is the one the Nuclio config gave: its folder or file (`nuctl deploy
    --path`), its functionSourceCode, or its code entry's path."""
    source = document["function"]["source"]
    entry = document["nuclio"].get("code_entry") or {}
    if source.get("base64") is not None:
        return bool(source["base64"] == entry.get("functionSourceCode"))
    from_path = bool(entry.get("path")) and source.get("code") is None
    return in_image(source) or from_path


def _build_steps(function: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """The requirements and instructions as Nuclio build steps on the base image: run as root
    (the base image runs as user 1000, whose pip cannot write the image's packages), then
    back to that user. Directives, since Nuclio drops them when `commands` are given."""
    commands = list(task.get("instructions") or [])
    if function["requirements"]:
        wanted = " ".join(shlex.quote(r) for r in function["requirements"])
        commands.insert(0, f"pip install --no-cache-dir {wanted}")
    if not commands:
        return {}
    steps = [{"kind": "USER", "value": "root"}]
    steps += [{"kind": "RUN", "value": command} for command in commands]
    steps.append({"kind": "USER", "value": "1000:1000"})
    return {"directives": {"preCopy": steps}}


def _triggers(section: dict[str, Any], workers: int) -> dict[str, Any]:
    """The config's triggers (none: an HTTP one), the HTTP ones with `workers` as numWorkers
    (maxWorkers, deprecated since Nuclio 1.13, becomes numWorkers)."""
    triggers = {name: dict(trigger) for name, trigger in (section.get("triggers") or {}).items()}
    http = [name for name, trigger in triggers.items() if trigger.get("kind") == "http"]
    if not http and not section.get("disable_default_http_trigger"):
        triggers["http"], http = {"kind": "http"}, ["http"]
    for name in http:
        triggers[name].pop("maxWorkers", None)
        triggers[name]["numWorkers"] = workers
    return triggers


def _from_config(
    section: dict[str, Any],
    function: dict[str, Any],
    spec: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    """What a Nuclio config gave that only Nuclio uses, back in its place."""
    labels = dict(label.split("=", 1) for label in function.get("labels") or [] if "=" in label)
    metadata["labels"] = {**labels, **metadata["labels"]}
    for key in ("namespace", "annotations"):
        if section.get(key):
            metadata[key] = section[key]
    if section.get("event_timeout"):
        spec["eventTimeout"] = section["event_timeout"]
    if section.get("disable_default_http_trigger") is not None:
        spec["disableDefaultHTTPTrigger"] = section["disable_default_http_trigger"]


def nuclio_runtime(python_version: str) -> str:
    """Nuclio's `python:3.X` runtime of a function's python_version; one Nuclio lacks is a
    SpecError."""
    dotted = PythonVersion(python_version).version
    if dotted not in NUCLIO_PYTHONS:
        raise SpecError(
            f"function.python_version {python_version!r}: Nuclio has no python:{dotted} runtime"
            f" (it has python:{', python:'.join(NUCLIO_PYTHONS)}): choose one of those, or"
            " deploy to Kubernetes (--target kubernetes)"
        )
    return f"python:{dotted}"


def secret_volume_name(secret: str) -> str:
    """The volume of a mounted secret: `secret-<name>` as a DNS label, with a short hash of
    the whole name, so that two names alike in their first characters stay two volumes."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:8]
    return f"secret-{dns_label(secret)}-{digest}"  # at most 7 + 40 + 9 characters


def _nuclio_handler(source: dict[str, Any]) -> str:
    """Nuclio's module:function form of the handler (its processor passes it to the wrapper
    as --handler, over the run spec's): the module as the wrapper imports it."""
    handler = str(source.get("handler") or "handler")
    if ":" in handler:
        return handler
    return f"{_handler_module(source)}:{handler}"


def _handler_module(source: dict[str, Any]) -> str:
    """The dotted module of a bare handler, from the source's root on sys.path: inline code is
    written at the relative path code_src names (`src/app.py` is `src.app`); a one-file
    code_src is imported from its own folder (`fn-wrapper build` copies it alone); anything
    else has its handler in main.py."""
    code_src = str(source.get("code_src") or "")
    if source.get("code") is not None or source.get("base64") is not None:
        path = PurePosixPath(inline_file_name(code_src or None))
        return ".".join(path.with_suffix("").parts)
    name = PurePosixPath(unquote(urlsplit(code_src).path)).name  # as a download is named
    return name[:-3] if name.endswith(".py") else "main"

"""A Kubernetes Job that builds a function's image with Kaniko, for clusters where no local
builder runs (DESIGN §8): the build context is packed as `context.tar.gz` for the user to put
where Kaniko reads it (s3://, gs://, https://), and the Job is rendered beside it.

Registry and storage credentials stay in the cluster: the Job names Kubernetes secrets (a
docker config for the registry, environment variables for the context's storage), never a
value.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, Optional

from wrapper.deploy.kubernetes import dns_label
from wrapper.errors import SpecError

KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.23.2"
CONTEXT_SCHEMES = ("s3://", "gs://", "https://", "http://")


def pack(context: Path) -> Path:
    """`context.tar.gz` of the context's files (Containerfile at its root), beside them."""
    archive = context / "context.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(context.iterdir()):
            if path != archive:
                tar.add(path, arcname=path.name)
    return archive


def job(
    name: str,
    target_image: str,
    context_uri: str,
    push: bool,
    registry_secret: Optional[str] = None,
    storage_secret: Optional[str] = None,
    kaniko_image: str = KANIKO_IMAGE,
) -> dict[str, Any]:
    """The Job manifest: Kaniko builds `context_uri` (the packed context) into
    `target_image`, pushed there with `push`, else only built (`--no-push`)."""
    if not context_uri.startswith(CONTEXT_SCHEMES):
        raise SpecError(
            f"--kaniko-context {context_uri!r}: where Kaniko reads context.tar.gz from"
            f" ({', '.join(CONTEXT_SCHEMES)})"
        )
    args = [f"--context={context_uri}", "--dockerfile=Containerfile"]
    args += [f"--destination={target_image}"] if push else ["--no-push"]
    container: dict[str, Any] = {
        "name": "kaniko",
        "image": kaniko_image,
        "args": args,
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if registry_secret:
        container["volumeMounts"] = [{"name": "registry", "mountPath": "/kaniko/.docker"}]
        pod["volumes"] = [
            {
                "name": "registry",
                "secret": {
                    "secretName": registry_secret,
                    "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                },
            }
        ]
    if storage_secret:
        container["envFrom"] = [{"secretRef": {"name": storage_secret}}]
    label = dns_label(name)
    labels = {"app.kubernetes.io/name": "fn-wrapper-build", "fn-wrapper/function": label}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": f"build-{label}-", "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }

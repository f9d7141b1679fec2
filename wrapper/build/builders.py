"""Image builders: buildah (daemonless, the default where it is installed), docker, or none
(the context only). Their own settings stay theirs: e.g. buildah's storage driver comes from
containers-storage.conf (or CONTAINERS_STORAGE_CONF), its isolation from BUILDAH_ISOLATION
(`vfs` and `chroot` where no overlay or user namespace is allowed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from wrapper.errors import ExitCode, SpecError, WrapperError

BUILDERS = ("buildah", "docker", "kaniko", "none")
"""kaniko: a Kubernetes Job is rendered (wrapper/deploy/kaniko.py), nothing runs here."""


class BuildError(WrapperError):
    """The builder failed (its own output says why): exit 1, as a handler that failed."""

    exit_code = ExitCode.HANDLER_FAILED


def choose(builder: Optional[str]) -> str:
    """The builder asked for, else buildah, else docker; SpecError when none is installed."""
    if builder is not None:
        if builder in ("buildah", "docker") and shutil.which(builder) is None:
            raise SpecError(f"--builder {builder}: {builder} is not installed here")
        return builder
    for name in ("buildah", "docker"):
        if shutil.which(name):
            return name
    raise SpecError(
        "no image builder here (buildah or docker): install one, give --builder none for the"
        " context only, or build in the cluster with the Kaniko Job under deploy/"
    )


def commands(builder: str, context: Path, target: str, push: bool) -> list[list[str]]:
    """The commands that build (and push) `target` from `context`."""
    if builder in ("kaniko", "none"):
        return []
    build = [builder, "build", "--file", str(context / "Containerfile"), "--tag", target]
    if builder == "buildah":
        build += ["--format", "oci"]
    steps = [[*build, str(context)]]
    if push:
        steps.append([builder, "push", target])
    return steps


def build_image(builder: str, context: Path, target: str, push: bool) -> None:
    """Run the builder, its output on our stderr (stdout keeps the summary line);
    BuildError when it fails."""
    for command in commands(builder, context, target, push):
        result = subprocess.run(command, stdout=sys.stderr)
        if result.returncode != 0:
            raise BuildError(
                f"{' '.join(command[:2])} failed with exit code {result.returncode}"
                f" (its output above says why; the context is kept in {context})"
            )

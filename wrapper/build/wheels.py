"""Wheels fetched on the build host for the image's Python and C library, so the image build
installs them with `--no-index` (it needs no package index: reproducible, and air-gapped)."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from wrapper.build.runtimes import Runtime
from wrapper.errors import SpecError


class WheelError(SpecError):
    """A requirement has no wheel for the image (or cannot be fetched)."""


def download_wheels(
    requirements: Path,
    destination: Path,
    runtime: Runtime,
    wheelhouses: Sequence[Path] = (),
    use_index: bool = True,
) -> list[str]:
    """Download the wheels `requirements` resolves to (dependencies included) for the image's
    Python and C library into `destination`; their file names."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--dest", str(destination), "--only-binary=:all:",
        "--python-version", runtime.dotted, "--implementation", "cp",
        "--requirement", str(requirements),
    ]  # fmt: skip
    for tag in runtime.platforms(platform.machine()):
        command += ["--platform", tag]
    for folder in wheelhouses:
        command += ["--find-links", str(folder)]
    if not use_index:
        command.append("--no-index")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        raise WheelError(
            f"requirements: no wheels for Python {runtime.dotted} on glibc {runtime.glibc}"
            f" ({'; '.join(reason) or result.stderr.strip()[-300:]}): the image installs"
            " wheels only; add a wheelhouse (--wheelhouse DIR) holding the missing ones"
        )
    return sorted(path.name for path in destination.glob("*.whl"))

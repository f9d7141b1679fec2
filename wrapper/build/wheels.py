"""Wheels fetched on the build host for the image's Python and C library, so the image build
installs them with `--no-index` (it needs no package index: reproducible, and air-gapped).

The runtime's pins are constraints: a requirement that would replace one of fn-wrapper's own
dependencies is refused here, before anything is built. What the requirements were written as
(a URL may carry a token) stays on the host: the context gets the wheels and their names."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from wrapper.build.runtimes import Runtime
from wrapper.errors import SpecError


class WheelError(SpecError):
    """A requirement has no wheel for the image, cannot be fetched, or conflicts with the
    runtime's pins."""


def download_wheels(
    requirements: Path,
    destination: Path,
    runtime: Runtime,
    wheelhouses: Sequence[Path] = (),
    use_index: bool = True,
) -> list[str]:
    """Download the wheels `requirements` resolves to (dependencies included, the runtime's
    pins as constraints) for the image's Python and C library into `destination`; their file
    names."""
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--dest", str(destination), "--only-binary=:all:",
        "--python-version", runtime.dotted, "--implementation", "cp",
        "--constraint", str(runtime.requirements), "--requirement", str(requirements),
    ]  # fmt: skip
    for tag in runtime.platforms(platform.machine()):
        command += ["--platform", tag]
    for folder in wheelhouses:
        command += ["--find-links", str(folder)]
    if not use_index:
        command.append("--no-index")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        if "conflict is caused by" in result.stdout:  # pip explains a conflict on stdout
            causes = [line.strip() for line in result.stdout.splitlines() if line[:4] == "    "]
            raise WheelError(
                f"requirements: conflict with fn-wrapper's runtime pins ({runtime.requirements})"
                f": {'; '.join(causes)}: the image keeps the runtime's versions; require"
                " those, or leave the package out"
            )
        reason = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        raise WheelError(
            f"requirements: no wheels for Python {runtime.dotted} on glibc {runtime.glibc}"
            f" ({'; '.join(reason) or result.stderr.strip()[-300:]}): the image installs"
            " wheels only; add a wheelhouse (--wheelhouse DIR) holding the missing ones"
        )
    return sorted(path.name for path in destination.glob("*.whl"))


def function_wheels(
    requirements: Sequence[str],
    destination: Path,
    runtime: Runtime,
    wheelhouses: Sequence[Path] = (),
    use_index: bool = True,
) -> list[str]:
    """Fetch a function's requirements on the host and put in `destination` the wheels the
    base image lacks (the runtime's own packages are already there, at the pinned versions),
    `requirements.txt` naming them `name==version`, and the runtime's pins as
    `constraints.txt`; those pins (none: `destination` is not made)."""
    if not requirements:
        return []
    with tempfile.TemporaryDirectory(prefix="fn-wrapper-wheels-") as folder:
        fetched = Path(folder)
        listed = fetched / "requirements.txt"
        listed.write_text("\n".join(requirements) + "\n")
        names = download_wheels(listed, fetched, runtime, wheelhouses, use_index)
        runtime_packages = {_canonical(pin.split("==")[0]) for pin in _pins(runtime)}
        wanted = [name for name in names if _canonical(name.split("-")[0]) not in runtime_packages]
        if not wanted:
            return []
        destination.mkdir()
        for name in wanted:
            shutil.move(str(fetched / name), destination / name)
    pins = ["==".join(name.split("-")[:2]) for name in wanted]
    (destination / "requirements.txt").write_text("\n".join(pins) + "\n")
    shutil.copy(runtime.requirements, destination / "constraints.txt")
    return pins


def _pins(runtime: Runtime) -> list[str]:
    lines = runtime.requirements.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _canonical(name: str) -> str:
    """A project name as PEP 503 compares them (`Nuclio_SDK` is `nuclio-sdk`)."""
    return re.sub(r"[-_.]+", "-", name).lower()

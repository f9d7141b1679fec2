"""The supported Python versions (runtimes/python3.X): the Python image Dockerfile.base starts
from, the fn-wrapper base image function builds start from, and the pinned requirements.

The folder ships inside the package as `wrapper/runtimes` (a link to the project's
`runtimes/`), so the build action reads the same files Dockerfile.base does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from wrapper.errors import SpecError

FOLDER = Path(__file__).resolve().parent.parent / "runtimes"

LINUX_MACHINES = {"arm64": "aarch64", "amd64": "x86_64"}
"""Other systems' names of the machines (macOS's `arm64`, Windows' `AMD64`) → Linux's, as
manylinux tags and `platform_machine` markers in a Linux image spell them."""


def linux_machine(machine: str) -> str:
    """`platform.machine()` of the build host as the image's Linux names it."""
    return LINUX_MACHINES.get(machine.lower(), machine)


class Runtime(NamedTuple):
    python_version: str
    """PYTHON3_11"""
    python_image: str
    """What Dockerfile.base starts from (a plain Python image)."""
    base_image: str
    """What a function build starts from by default (Dockerfile.base's image)."""
    glibc: str
    """The C library of the Python image ("2.36" for bookworm): which wheels run on it."""
    folder: Path

    @property
    def dotted(self) -> str:
        return self.python_version.removeprefix("PYTHON").replace("_", ".")

    def platforms(self, machine: str) -> list[str]:
        """The wheel platform tags that run on this runtime's image on `machine` (x86_64,
        aarch64), newest first, for `pip download --platform` (which does not expand them)."""
        machine = linux_machine(machine)
        newest = int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 16, -1)]
        legacy = ["manylinux2014"] + (
            ["manylinux2010", "manylinux1"] if machine == "x86_64" else []
        )
        return tags + [f"{name}_{machine}" for name in legacy]

    @property
    def requirements(self) -> Path:
        """fn-wrapper's own dependencies on this Python, pinned (runtimes/pin.py)."""
        return self.folder / "requirements.txt"


def runtimes() -> dict[str, Runtime]:
    """Every runtime by its python_version."""
    found = {}
    folders = sorted(FOLDER.glob("python3.*/runtime.json"), key=lambda p: int(p.parent.suffix[1:]))
    for definition in folders:
        data = json.loads(definition.read_text())
        found[data["python_version"]] = Runtime(
            data["python_version"],
            data["python_image"],
            data["base_image"],
            data["glibc"],
            definition.parent,
        )
    return found


def runtime(python_version: str) -> Runtime:
    """The runtime of `python_version`; SpecError naming the supported ones otherwise."""
    known = runtimes()
    if python_version not in known:
        raise SpecError(
            f"python_version {python_version!r} has no runtime: one of {', '.join(known)}"
        )
    return known[python_version]

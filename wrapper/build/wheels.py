"""Wheels fetched on the build host for the image's Python and C library, so the image build
installs them with `--no-index` (it needs no package index: reproducible, and air-gapped).

The runtime's pins are constraints: a requirement that would replace one of fn-wrapper's own
dependencies is refused here, before anything is built. What the requirements were written as
(a URL may carry a token) stays on the host: the context gets the wheels and their names."""

from __future__ import annotations

import email.parser
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wrapper.build.pip_run import CROSS, WheelError, network_failure, run_bounded, tail
from wrapper.build.runtimes import Runtime, linux_machine
from wrapper.sources.settings import FetchLimits
from wrapper.sources.uri import redact_uri

ROUNDS = 10
"""How many times pip is asked again for dependencies it left out (one level deeper each)."""


def download_wheels(
    requirements: Path,
    destination: Path,
    runtime: Runtime,
    wheelhouses: Sequence[Path] = (),
    use_index: bool = True,
    limits: Optional[FetchLimits] = None,
) -> list[str]:
    """Download the wheels `requirements` resolves to (dependencies included, the runtime's
    pins as constraints) for the image's Python and C library into `destination`, within
    `limits` (default: the `FN_WRAPPER_*` download settings); the file names of those the
    image needs.

    pip evaluates environment markers (`tomli; python_version < "3.11"`) against the host's
    Python, not the image's: the markers are evaluated here for the image, pip is asked again
    for the dependencies it left out until none is missing, and the wheels only the host's
    Python needs are not named."""
    machine = linux_machine(platform.machine())
    environment = target_environment(runtime, machine)
    wanted = _for_image(_requirement_lines(requirements), environment)
    if limits is None:
        limits = _environ_limits()
    ends = time.monotonic() + limits.total_timeout  # one deadline for every round
    with tempfile.TemporaryDirectory(prefix="fn-wrapper-requirements-") as folder:
        for _ in range(ROUNDS):
            listed = Path(folder, "requirements.txt")
            listed.write_text("".join(f"{line}\n" for line in wanted))
            command = _pip_command(listed, destination, runtime, machine, wheelhouses, use_index)
            _pip_download(command, runtime, Path(folder), limits, ends)
            _refuse_other_files(destination, wanted)
            missing, needed = _closure(destination, wanted, environment)
            if not missing:
                return needed
            wanted += missing
    raise WheelError(
        f"requirements: dependencies still missing after {ROUNDS} rounds of pip download:"
        f" {', '.join(missing)}; name them in the function's requirements"
    )


def _environ_limits() -> FetchLimits:
    try:
        return FetchLimits.from_environ(os.environ)
    except ValueError as exc:
        raise WheelError(f"requirements: {exc}") from None


def _pip_command(
    requirements: Path,
    destination: Path,
    runtime: Runtime,
    machine: str,
    wheelhouses: Sequence[Path],
    use_index: bool,
) -> list[str]:
    abi = "cp" + runtime.dotted.replace(".", "")
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
        "--progress-bar", "off", "--dest", str(destination), "--only-binary=:all:",
        "--python-version", runtime.dotted, "--implementation", "cp", "--abi", abi,
        "--constraint", str(runtime.requirements), "--requirement", str(requirements),
    ]  # fmt: skip
    for tag in runtime.platforms(machine):
        command += ["--platform", tag]
    for folder in wheelhouses:
        command += ["--find-links", str(folder)]
    if not use_index:
        command.append("--no-index")
    return command


def _pip_download(
    command: list[str], runtime: Runtime, scratch: Path, limits: FetchLimits, ends: float
) -> None:
    """Run pip's `command` within `limits` and the deadline `ends` (time.monotonic());
    a one-line WheelError when it fails or is cut off."""
    timeout = ["--timeout", f"{limits.read_timeout:g}"]  # each wait on a socket
    if run_bounded(command + timeout, scratch, limits, ends) == 0:
        return
    stdout, stderr = tail(scratch / "pip.out"), tail(scratch / "pip.err")
    if "conflict is caused by" in stdout:  # pip explains a conflict on stdout
        causes = [line.strip() for line in stdout.splitlines() if line[:4] == "    "]
        raise WheelError(
            f"requirements: conflict with fn-wrapper's runtime pins ({runtime.requirements})"
            f": {'; '.join(causes)}: the image keeps the runtime's versions; require"
            " those, or leave the package out"
        )
    reason = network_failure(stdout + stderr, limits)
    if reason is None:
        errors = [line for line in stderr.splitlines() if line.startswith(("ERROR", CROSS))]
        reason = (
            f"no wheels for Python {runtime.dotted} on glibc {runtime.glibc}"
            f" ({'; '.join(errors) or stderr.strip()[-300:]}): the image installs"
            " wheels only; add a wheelhouse (--wheelhouse DIR) holding the missing ones"
        )
    raise WheelError(redact_uri(" ".join(f"requirements: {reason}".split())))


def target_environment(runtime: Runtime, machine: str) -> dict[str, str]:
    """The PEP 508 marker values of the image's Python on Linux `machine`. Its patch version
    is unknown here: `.0`, so a marker on it errs towards one dependency more, never less."""
    full = f"{runtime.dotted}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": full,
        "python_version": runtime.dotted,
        "sys_platform": "linux",
    }


def _requirement_lines(file: Path) -> list[str]:
    lines = (line.strip() for line in file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _for_image(lines: list[str], environment: dict[str, str]) -> list[str]:
    """The requirements that apply to the image, their markers evaluated for it (and dropped,
    so pip does not evaluate them again for the host)."""
    kept = []
    for line in lines:
        requirement = _parse(line)
        if requirement is None or requirement.marker is None:
            kept.append(line)
        elif requirement.marker.evaluate({**environment, "extra": ""}):
            requirement.marker = None
            kept.append(str(requirement))
    return kept


def _parse(line: str) -> Optional[Requirement]:
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None  # a pip option line: pip reads it


def _refuse_other_files(destination: Path, wanted: Sequence[str]) -> None:
    """A WheelError naming the requirement that came as something else than a wheel (an
    sdist, a folder, a VCS checkout): pip would build it on the host, not for the image."""
    wheels = {_project(path.name) for path in destination.glob("*.whl")}
    others = sorted(path.name for path in destination.iterdir() if path.suffix != ".whl")
    for line in wanted:
        requirement = _parse(line)
        if requirement is None or canonicalize_name(requirement.name) in wheels:
            continue
        prefix = canonicalize_name(requirement.name) + "-"
        found = next((name for name in others if canonicalize_name(name).startswith(prefix)), None)
        fetched = f"pip fetched {found}" if found else "a folder or checkout: pip fetched no file"
        raise WheelError(
            f"requirements: {redact_uri(line)!r} has no wheel ({fetched}): the image installs"
            " wheels only; build one (`pip wheel`) and add its folder with --wheelhouse DIR"
        )
    if others:
        raise WheelError(
            f"requirements: a dependency came as {others[0]}, not a wheel: the image installs"
            " wheels only; build one (`pip wheel`) and add its folder with --wheelhouse DIR"
        )


def _closure(
    destination: Path, wanted: Sequence[str], environment: dict[str, str]
) -> tuple[list[str], list[str]]:
    """What the image needs (markers evaluated for it): the dependencies no wheel provides,
    and the wheels needed (pip may have fetched more: dependencies of the host's Python)."""
    wheels = {_project(path.name): path for path in destination.glob("*.whl")}
    queue = [r for r in map(_parse, wanted) if r is not None]
    seen: set[tuple[str, str]] = set()
    missing: dict[str, str] = {}
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name not in wheels:
            requirement.marker = None
            missing.setdefault(name, str(requirement))
            continue
        version = wheels[name].name.split("-")[1]
        if not requirement.specifier.contains(version, prereleases=True):
            raise WheelError(
                f"requirements: {requirement.name}{requirement.specifier} is needed on Python"
                f" {environment['python_version']} ({_needed_by(wheels, name, version)}), and"
                f" the wheels have {wheels[name].name}: pip chose it for the host's Python"
                " (or fn-wrapper's runtime pins it); require versions that agree"
            )
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for dependency in _dependencies(wheels[name]):
                marker = dependency.marker
                if marker is None or marker.evaluate({**environment, "extra": extra}):
                    queue.append(dependency)
    needed = {name for name, _ in seen}
    return list(missing.values()), sorted(path.name for n, path in wheels.items() if n in needed)


def _needed_by(wheels: dict[str, Path], name: str, version: str) -> str:
    """Which wheels require `name` (for an error)."""
    found = [
        path.name.split("-")[0]
        for path in wheels.values()
        if any(canonicalize_name(dependency.name) == name for dependency in _dependencies(path))
    ]
    return f"by {', '.join(sorted(found))}" if found else "as written"


def _dependencies(wheel: Path) -> list[Requirement]:
    """The Requires-Dist of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(
            (n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)), None
        )
        if name is None:
            raise WheelError(f"requirements: {wheel.name} has no METADATA: not a wheel")
        metadata = email.parser.BytesHeaderParser().parsebytes(archive.read(name))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or ()]


def function_wheels(
    requirements: Sequence[str],
    destination: Path,
    runtime: Runtime,
    wheelhouses: Sequence[Path] = (),
    use_index: bool = True,
    limits: Optional[FetchLimits] = None,
) -> list[str]:
    """Fetch a function's requirements on the host (within `limits`: download_wheels) and
    put in `destination` the wheels the base image lacks (the runtime's own packages are
    already there, at the pinned versions), `requirements.txt` naming them `name==version`,
    and the runtime's pins as `constraints.txt`; those pins (none: `destination` is not
    made)."""
    if not requirements:
        return []
    with tempfile.TemporaryDirectory(prefix="fn-wrapper-wheels-") as folder:
        listed = Path(folder, "requirements.txt")
        fetched = Path(folder, "wheels")
        fetched.mkdir()
        listed.write_text("\n".join(requirements) + "\n")
        names = download_wheels(listed, fetched, runtime, wheelhouses, use_index, limits)
        runtime_packages = {canonicalize_name(pin.split("==")[0]) for pin in _pins(runtime)}
        wanted = [name for name in names if _project(name) not in runtime_packages]
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


def _project(wheel: str) -> str:
    """The canonical project name of a wheel file name (`Nuclio_SDK-0.6-...whl`: nuclio-sdk)."""
    return canonicalize_name(wheel.split("-")[0])

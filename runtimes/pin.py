"""Pin each runtime's requirements: what `pip install fn-wrapper` resolves to on that Python.

    python runtimes/pin.py [3.11 ...]      # default: every runtime folder here

For each `runtimes/python3.X/`, the interpreter `python3.X` (or pyenv's 3.X.*) resolves this
project's dependencies with `pip install --dry-run --report` and the exact versions are
written to `requirements.txt`, which `Dockerfile.base` and `fn-wrapper build` install as
constraints: one resolution per Python version, reviewed in the diff when it changes.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent


def interpreter(version: str) -> str:
    """pyenv's newest 3.X (its shims need a selected version), else python3.X on PATH."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    found = candidates[-1] if candidates else shutil.which(f"python{version}")
    if not found:
        sys.exit(f"pin: no python{version} in pyenv or on PATH")
    return found


def pins(python: str) -> list[str]:
    """The runtime's packages at the versions resolved together with the `s3` extra: the
    image leaves boto3 out, but a function that requires it must fit the pins (on 3.9,
    botocore needs urllib3 < 1.27, which dulwich accepts too)."""
    runtime = resolve(python, str(PROJECT))
    with_s3 = resolve(python, f"{PROJECT}[s3]")
    return sorted(f"{name}=={with_s3[name]}" for name in runtime if name != "fn-wrapper")


def resolve(python: str, requirement: str) -> dict[str, str]:
    """What `pip install requirement` would install on `python`: name → version."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--report", str(report), requirement],
            check=True,
        )  # fmt: skip
        installed = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in installed}


def main() -> None:
    versions = sys.argv[1:] or sorted(p.name.removeprefix("python") for p in HERE.glob("python3.*"))
    for version in versions:
        lines = pins(interpreter(version))
        target = HERE / f"python{version}" / "requirements.txt"
        target.write_text(
            f"# fn-wrapper's runtime on Python {version}, pinned by runtimes/pin.py\n"
            + "\n".join(lines)
            + "\n"
        )
        print(f"{target.relative_to(PROJECT)}: {len(lines)} pins")


if __name__ == "__main__":
    main()

"""Packages named `digitalhub_runtime_python` and `digitalhub` that raise when imported: put
on a door's PYTHONPATH, they prove that fn-wrapper's doors never import the real ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NAMES = ("digitalhub_runtime_python", "digitalhub")


def raising_packages(folder: Path) -> Path:
    """`folder` holding the two packages, each raising ImportError on import; checked: a
    plain interpreter with `folder` on its path does fail to import them."""
    for name in NAMES:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('the real {name} package was imported')\n"
        )
    for name in NAMES:
        plain = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            env={**os.environ, "PYTHONPATH": str(folder)},
            capture_output=True,
        )
        assert b"package was imported" in plain.stderr, plain.stderr
    return folder


def on_path(*folders: Path) -> str:
    """A PYTHONPATH value with `folders` first."""
    return os.pathsep.join(str(folder) for folder in folders)

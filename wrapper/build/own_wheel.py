"""fn-wrapper's own wheel, made from the running installation: what a function image built on
a base image without fn-wrapper installs on top (the package is not on any index)."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "fn-wrapper"
PACKAGE = Path(__file__).resolve().parent.parent
"""The `wrapper` package folder (its `runtimes` may be a link to the project's: followed)."""


def write_own_wheel(folder: Path) -> Path:
    """`fn_wrapper-<version>-py3-none-any.whl` in `folder`: the package's files (no bytecode)
    and the installed distribution's metadata and entry points."""
    dist = metadata.distribution(DISTRIBUTION)
    version = dist.version
    info = f"fn_wrapper-{version}.dist-info"
    files: dict[str, bytes] = {}
    for directory, subfolders, names in os.walk(PACKAGE, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                path = Path(directory, name)
                files[f"wrapper/{path.relative_to(PACKAGE).as_posix()}"] = path.read_bytes()
    files[f"{info}/METADATA"] = (dist.read_text("METADATA") or "").encode()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: fn-wrapper\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = folder / f"fn_wrapper-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():  # fixed times and modes: the same files, the same wheel
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

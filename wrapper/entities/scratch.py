"""Temporary folders a process makes for content (downloads, copies read whole), removed with
what is in them when the process exits."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_MADE: list[str] = []


def scratch_folder(prefix: str = "fn-wrapper-entity-") -> Path:
    """A new temporary folder, removed (with what is in it) when the process exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    if not _MADE:
        atexit.register(_remove_all)
    _MADE.append(folder)
    return Path(folder)


def _remove_all() -> None:
    while _MADE:
        shutil.rmtree(_MADE.pop(), ignore_errors=True)

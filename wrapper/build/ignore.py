"""What of a function's source folder stays out of its image (DESIGN §8: no secret in a layer).

Always left out: version-control folders (`.git`, `.hg`, `.svn`: a `.git/config` may hold a
token URL), `.env` and `.env.*` files, and Python caches. Then whatever the folder's
`.dockerignore` names, one pattern a line (`#` comments), by one rule: a pattern without `/`
matches a file or folder name at any depth (`*.log`, `secrets`); one with `/` matches the path
from the source folder (`config/local.yaml`, `data/*`); a folder left out takes its contents
with it. `!` exceptions are refused rather than half honoured.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from wrapper.errors import SpecError

ALWAYS = (".git", ".hg", ".svn", ".env", ".env.*", "__pycache__", "*.pyc")

IGNORE_FILE = ".dockerignore"


def source_ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    """A `shutil.copytree` ignore function for the source folder `root`."""
    patterns = (*ALWAYS, *_read(root / IGNORE_FILE))

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = os.path.relpath(folder, root)
        return {name for name in names if _matches(Path(relative, name).as_posix(), name, patterns)}

    return ignore


def _matches(path: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)


def _read(file: Path) -> list[str]:
    """The patterns of an ignore file (none when there is none)."""
    if not file.is_file():
        return []
    patterns = []
    for number, line in enumerate(file.read_text().splitlines(), 1):
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        if pattern.startswith("!"):
            raise SpecError(
                f"code_src {IGNORE_FILE} line {number}: {pattern!r}: exceptions (!) are not"
                " supported; name what to leave out instead"
            )
        pattern = pattern.strip("/").removeprefix("**/")
        patterns.append(pattern.removeprefix("./"))
    return patterns

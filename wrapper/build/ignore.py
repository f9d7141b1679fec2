"""What of a function's source folder stays out of its image (DESIGN §8: no secret in a layer).

Always left out: version-control folders (`.git`, `.hg`, `.svn`: a `.git/config` may hold a
token URL), `.env`, `.env.*` and `.envrc` files (they commonly hold secrets), and Python
caches. Then whatever the folder's `.dockerignore` names, one pattern a line (`#` comments),
by one rule: a pattern without `/` matches a file or folder name at any depth (`*.log`,
`secrets`); one with `/` matches the path from the source folder (`config/local.yaml`,
`data/*`), where `*` and `?` stay within one folder and `**` matches zero or more folders
(`config/**/local.yaml` matches `config/local.yaml` too); a folder left out takes its contents
with it. `!` exceptions are refused rather than half honoured.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Callable

from wrapper.errors import SpecError

ALWAYS = (".git", ".hg", ".svn", ".env", ".env.*", ".envrc", "__pycache__", "*.pyc")

IGNORE_FILE = ".dockerignore"


def source_ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    """A `shutil.copytree` ignore function for the source folder `root`."""
    patterns = (*ALWAYS, *_read(root / IGNORE_FILE))
    by_name = [p for p in patterns if "/" not in p]
    by_path = [path_pattern(p) for p in patterns if "/" in p]

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = os.path.relpath(folder, root)
        return {
            name
            for name in names
            if any(fnmatch.fnmatchcase(name, p) for p in by_name)
            or any(p.fullmatch(Path(relative, name).as_posix()) for p in by_path)
        }

    return ignore


def path_pattern(pattern: str) -> re.Pattern[str]:
    """A pattern with `/` as a regular expression of the path from the source folder: `*`, `?`
    and `[...]` within one name, `**` zero or more folders (a last `**`: anything below)."""
    parts = pattern.split("/")
    text = ""
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        if part == "**":
            text += ".*" if last else "(?:[^/]+/)*"
        else:
            text += _name_pattern(part) + ("" if last else "/")
    return re.compile(text)


def _name_pattern(part: str) -> str:
    """One name of a pattern as a regular expression: `*`, `?` and `[...]` (`[!...]` or
    `[^...]` negated), none of them crossing a `/`."""
    text, index = "", 0
    while index < len(part):
        char, index = part[index], index + 1
        if char == "*":
            text += "[^/]*"
        elif char == "?":
            text += "[^/]"
        elif char == "[":
            start = index + (part[index : index + 1] in ("!", "^"))
            start += part[start : start + 1] == "]"  # `[]...]`: a `]` member
            close = part.find("]", start)
            if close < 0:
                text += re.escape(char)
                continue
            members = part[index:close]
            negated = members[:1] in ("!", "^")
            members = members[negated:].replace("\\", "\\\\").replace("[", "\\[")
            text += f"[^/{members}]" if negated else f"[{members}]"
            index = close + 1
        else:
            text += re.escape(char)
    return text


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
        pattern = re.sub(r"/+", "/", pattern.strip("/")).removeprefix("./")
        patterns.append(pattern.removeprefix("**/") if pattern.count("/") == 1 else pattern)
    return patterns

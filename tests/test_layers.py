"""The core, the doors' libraries, deploy and wrapper.testing never import the command line:
the settings they share with it live in wrapper.settings (DESIGN §11)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wrapper"
ENTRY_POINTS = {"__main__.py", "nuclio/entry.py"}
"""What starts the command line (`python -m wrapper`, the Nuclio processor's entry)."""


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_command_line_imports_the_command_line() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("cli/") or relative in ENTRY_POINTS:
            continue
        cli = sorted(name for name in imported(path) if name.split(".")[:2] == ["wrapper", "cli"])
        if cli:
            offenders[relative] = cli
    assert offenders == {}

"""Where the code of an unpacked tree starts."""

from __future__ import annotations

from pathlib import Path

from wrapper.sources import SourceTree


def archive_tree(folder: Path) -> SourceTree:
    """The tree of an unpacked archive.

    An archive holding one top-level folder that is not a package (as `zip -r func.zip
    func/` or a forge's download makes) is rooted inside it; an archive with a single
    top-level `.py` file is a one-file source, so a bare handler name finds it.
    """
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    only = entries[0] if len(entries) == 1 else None
    if only and only.is_dir() and not only.is_symlink() and not (only / "__init__.py").exists():
        folder = only
    modules = [p.name for p in folder.glob("*.py") if p.is_file()]
    return SourceTree(folder, single_file=modules[0] if len(modules) == 1 else None)

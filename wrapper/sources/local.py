"""Local sources: a `.py` file or a folder used in place, or a local zip / tar archive."""

from __future__ import annotations

from pathlib import Path

from wrapper.errors import SourceError
from wrapper.sources import SourceTree
from wrapper.sources.settings import SourceSettings
from wrapper.sources.uri import SourceURI


def materialise_local(uri: SourceURI, settings: SourceSettings) -> SourceTree:
    """A folder or `.py` file is imported in place; an archive is unpacked into the cache."""
    path = Path(uri.location)
    if path.is_dir():
        if uri.sha256:
            raise SourceError(f"code_src {uri.shown!r}: a folder cannot be pinned by sha256")
        return SourceTree(path.resolve())
    if not path.exists():
        raise SourceError(f"code_src {uri.shown!r}: no such file or folder")
    if path.suffix == ".py" and not uri.sha256:
        resolved = path.resolve()  # the common case, without the archive machinery
        return SourceTree(resolved.parent, single_file=resolved.name)
    from wrapper.sources.blob import tree_from_file

    return tree_from_file(path, uri, settings, in_place=True)

"""Local sources: a `.py` file or a folder used in place, or a local zip / tar archive."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceTree
from wrapper.sources.archive import archive_kind, unpack_archive
from wrapper.sources.cache import CodeCache
from wrapper.sources.layout import archive_tree


def materialise_local(code_src: str, cache_dir: Optional[Path]) -> SourceTree:
    """A folder or `.py` file is imported in place; an archive is unpacked into the cache."""
    path = local_path(code_src)
    if path.is_dir():
        return SourceTree(path.resolve())
    try:
        with path.open("rb") as stream:
            head = stream.read(512)
    except OSError as exc:
        raise SourceError(f"code_src {code_src!r}: {exc.strerror or exc}") from None
    if archive_kind(head):
        try:
            folder = CodeCache(cache_dir).tree(
                "archive", _file_digest(path), lambda dest: unpack_archive(path, dest)
            )
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"code_src {code_src!r}: {exc.message}") from None
        return archive_tree(folder)
    if path.suffix != ".py":
        raise SourceError(f"code_src {code_src!r}: not a .py file, a folder or a zip / tar archive")
    resolved = path.resolve()
    return SourceTree(resolved.parent, single_file=resolved.name)


def local_path(code_src: str) -> Path:
    """The path a local `code_src` names: a plain path or a `file://` URI (no remote host)."""
    if not code_src.lower().startswith("file://"):
        return Path(code_src)
    parts = urlsplit(code_src)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"code_src {code_src!r}: a file:// URI cannot name host {parts.netloc!r}")
    return Path(unquote(parts.path))


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

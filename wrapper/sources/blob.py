"""A fetched file becomes a tree: an archive is unpacked, a `.py` file is a one-file source."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import IO, Any, Callable, Optional

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceTree
from wrapper.sources.archive import archive_kind, unpack_archive
from wrapper.sources.cache import CodeCache
from wrapper.sources.layout import archive_tree
from wrapper.sources.settings import SourceSettings
from wrapper.sources.uri import SourceURI

_CHUNK = 256 * 1024


def tree_from_file(
    path: Path, uri: SourceURI, settings: SourceSettings, *, name: str = "", in_place: bool = False
) -> SourceTree:
    """The tree of a file `uri` named: checked against its sha256 pin, then unpacked when it is
    an archive, else kept as a one-file source (`name`, default the file's own name).

    `in_place` leaves a local `.py` file where it is instead of copying it into the cache.
    """
    name = name or path.name
    digest = file_sha256(path)
    if uri.sha256 and digest != uri.sha256:
        raise SourceError(
            f"code_src {uri.shown!r}: content sha256 is {digest}, the pin says {uri.sha256}"
        )
    with path.open("rb") as stream:
        kind = archive_kind(stream.read(512))
    if uri.archive and not (kind or "").startswith(uri.archive):
        found = f"a {kind} archive" if kind else "not an archive"
        raise SourceError(
            f"code_src {uri.shown!r}: {uri.archive}+ names a {uri.archive} archive, "
            f"the content is {found}"
        )
    if kind:
        try:
            folder = CodeCache(settings.cache_dir).tree(
                "archive", digest, lambda dest: unpack_archive(path, dest, settings.archive_limits)
            )
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"code_src {uri.shown!r}: {exc.message}") from None
        return archive_tree(folder)
    if not name.endswith(".py"):
        raise SourceError(
            f"code_src {uri.shown!r}: not a .py file, a folder or a zip / tar archive"
        )
    if in_place:
        resolved = path.resolve()
        return SourceTree(resolved.parent, single_file=resolved.name)
    key = hashlib.sha256(f"{name}\0{digest}".encode()).hexdigest()
    folder = CodeCache(settings.cache_dir).tree(
        "file", key, lambda dest: shutil.copyfile(path, dest / name)
    )
    return SourceTree(folder, single_file=name)


def pinned_tree(uri: SourceURI, name: str, settings: SourceSettings) -> Optional[SourceTree]:
    """The cached tree of a sha256-pinned file source, if it was materialised before."""
    if not uri.sha256:
        return None
    cache = CodeCache(settings.cache_dir)
    folder = cache.find("archive", uri.sha256)
    if folder is not None:
        return archive_tree(folder)
    key = hashlib.sha256(f"{name}\0{uri.sha256}".encode()).hexdigest()
    folder = cache.find("file", key)
    return SourceTree(folder, single_file=name) if folder is not None else None


def tree_note(tree: SourceTree, **validators: Optional[str]) -> dict[str, Any]:
    """A cache note recording a tree and what validates it (ETag, commit, ...)."""
    return {"root": str(tree.root), "single_file": tree.single_file, **validators}


def noted_tree(note: Optional[dict[str, Any]]) -> Optional[SourceTree]:
    """The tree a note records, if the note exists and its folder is still in the cache."""
    if not note or not Path(str(note.get("root"))).is_dir():
        return None
    single_file = note.get("single_file")
    return SourceTree(Path(note["root"]), single_file=single_file if single_file else None)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's content, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_bounded(
    read: Callable[[int], bytes],
    out: IO[bytes],
    *,
    uri: SourceURI,
    settings: SourceSettings,
    started: float,
) -> int:
    """Copy a download to `out` until `read` returns b"", enforcing the size and time limits."""
    limits = settings.limits
    total = 0
    while chunk := read(_CHUNK):
        total += len(chunk)
        if total > limits.max_download_bytes:
            raise SourceError(
                f"code_src {uri.shown!r}: download larger than "
                f"max_download_bytes={limits.max_download_bytes}"
            )
        if time.monotonic() - started > limits.total_timeout:
            raise SourceError(
                f"code_src {uri.shown!r}: download took longer than {limits.total_timeout:g} s"
            )
        out.write(chunk)
    return total

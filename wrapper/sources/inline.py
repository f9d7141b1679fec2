"""Inline sources: `code` (plain text) and `base64` (source text or a zip / tar archive)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path, PurePosixPath
from typing import Optional

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceFields, SourceTree
from wrapper.sources.archive import archive_kind, unpack_archive
from wrapper.sources.cache import CodeCache
from wrapper.sources.layout import archive_tree
from wrapper.sources.settings import SourceSettings
from wrapper.sources.uri import uri_scheme


def materialise_inline(source: SourceFields, settings: SourceSettings) -> SourceTree:
    """Write inline code as `main.py` (or the path `code_src` names), or unpack an archive."""
    if source.code is not None:
        data = source.code.encode("utf-8")
    else:
        data = _decode_base64(source.base64 or "")
        if archive_kind(data[:512]):
            return _unpack(data, settings)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(
                "function.base64: the decoded content is neither a zip / tar archive nor "
                "UTF-8 Python source"
            ) from None
    name = inline_file_name(source.code_src)
    key = hashlib.sha256(name.encode() + b"\0" + data).hexdigest()

    def write(folder: Path) -> None:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    return SourceTree(CodeCache(settings.cache_dir).tree("inline", key, write), single_file=name)


def inline_file_name(code_src: Optional[str]) -> str:
    """Where inline code is written: the relative `.py` path `code_src` names, else `main.py`."""
    if not code_src:
        return "main.py"
    path = PurePosixPath(code_src.split("://", 1)[1] if uri_scheme(code_src) else code_src)
    if path.suffix != ".py":
        return "main.py"
    if uri_scheme(code_src) or path.is_absolute() or ".." in path.parts:
        return path.name
    return str(path)


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SourceError(f"function.base64: not valid base64 ({exc})") from None


def _unpack(data: bytes, settings: SourceSettings) -> SourceTree:
    key = hashlib.sha256(data).hexdigest()
    limits = settings.archive_limits
    try:
        folder = CodeCache(settings.cache_dir).tree(
            "archive", key, lambda dest: unpack_archive(io.BytesIO(data), dest, limits)
        )
    except UnsafeArchiveError as exc:
        raise UnsafeArchiveError(f"function.base64: {exc.message}") from None
    return archive_tree(folder)

"""Materialise a function's code (inline text, base64, local paths) into a folder to import from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from wrapper.errors import SourceError


class SourceFields(Protocol):
    """The source fields of a function spec (a `SourceSpec` or anything shaped like it)."""

    code_src: Optional[str]
    code: Optional[str]
    base64: Optional[str]


@dataclass(frozen=True)
class SourceTree:
    """Materialised code: the folder that goes on `sys.path`, and the file of a one-file source."""

    root: Path
    single_file: Optional[str] = None


def materialise_source(source: SourceFields, cache_dir: Optional[Path] = None) -> SourceTree:
    """Turn spec source fields into a folder of code (written atomically, cached by content)."""
    if source.code is not None or source.base64 is not None:
        from wrapper.sources.inline import materialise_inline

        return materialise_inline(source, cache_dir)
    if not source.code_src:
        raise SourceError("no code: give one of code, base64 or code_src")
    scheme = uri_scheme(source.code_src)
    if scheme in ("", "file"):
        from wrapper.sources.local import materialise_local

        return materialise_local(source.code_src, cache_dir)
    raise SourceError(
        f"code_src {redact_uri(source.code_src)!r}: unsupported scheme {scheme!r} "
        "(supported: a local path or file:// URI)"
    )


def uri_scheme(uri: str) -> str:
    """The lower-cased scheme of a URI (`zip+https`, `file`, ...), or "" for a plain path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", uri)
    return match.group(1).lower() if match else ""


def redact_uri(uri: str) -> str:
    """The URI with any user:password part hidden, fit for logs and error messages."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", uri)

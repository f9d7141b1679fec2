"""Materialise a function's code (inline, local, http(s), git, S3) into a folder to import from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol

from wrapper.errors import SourceError

if TYPE_CHECKING:
    from wrapper.sources.settings import SourceSettings


class SourceFields(Protocol):
    """The source fields of a function spec (a `SourceSpec`, a `FunctionPlan`, ...)."""

    @property
    def code_src(self) -> Optional[str]: ...

    @property
    def code(self) -> Optional[str]: ...

    @property
    def base64(self) -> Optional[str]: ...


@dataclass(frozen=True)
class SourceTree:
    """Materialised code: the folder that goes on `sys.path`, and the file of a one-file source."""

    root: Path
    single_file: Optional[str] = None


def materialise_source(
    source: SourceFields, settings: Optional[SourceSettings] = None
) -> SourceTree:
    """Turn spec source fields into a folder of code (downloads bounded, cached by content)."""
    from wrapper.sources.settings import SourceSettings
    from wrapper.sources.uri import parse_source_uri

    settings = settings or SourceSettings()
    if source.code is not None or source.base64 is not None:
        from wrapper.sources.inline import materialise_inline

        return materialise_inline(source, settings)
    if not source.code_src:
        raise SourceError("no code: give one of code, base64 or code_src")
    uri = parse_source_uri(source.code_src)
    if uri.transport in ("", "file"):
        from wrapper.sources.local import materialise_local

        return materialise_local(uri, settings)
    if uri.git:
        from wrapper.sources.git import materialise_git

        return materialise_git(uri, settings)
    if uri.transport == "s3":
        from wrapper.sources.s3 import materialise_s3

        return materialise_s3(uri, settings)
    from wrapper.sources.http import materialise_http

    return materialise_http(uri, settings)

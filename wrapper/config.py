"""Assemble the run document from a spec, environment twins and flags (DESIGN §10).

Per field: flags > environment twins > spec document > defaults. A source flag
(`--code`, `--base64`, `--code-src`) replaces the document's whole source; the dict
flags (`--parameters`, `--init-parameters`, `--inputs`) merge key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from wrapper.errors import SpecError
from wrapper.settings import Settings
from wrapper.sources.uri import uri_scheme

CODE_FIELDS = ("code", "base64", "code_src")
SOURCE_SETTINGS = ("handler", "init_function")
FUNCTION_SETTINGS = ("name", "python_version", "requirements", "base_image")
MERGED_SETTINGS = ("parameters", "init_parameters", "inputs")


def build_document(settings: Settings) -> Any:
    """The validated `RunDocument` for these settings (a SpecError lists every bad field)."""
    from wrapper.spec.document import read_document, validate_document

    if settings.values.get("spec"):
        data, base = read_document(settings.spec)
    else:
        data, base = {}, None
        found = _config_beside_code(settings)
        if found is not None:
            data, base, settings = found
    return validate_document(overlay(data, base, settings))


def _config_beside_code(settings: Settings) -> Optional[tuple[dict[str, Any], Path, Settings]]:
    """With no --spec, the Nuclio config a local `--code-src` holds (a folder's function.yaml,
    a source file's `# @nuclio.configure` block) as the spec document, whose source is that
    code_src with the config's handler; and the settings less the code_src it took over."""
    from wrapper.spec.document import read_config
    from wrapper.spec.nuclio import config_in

    code_src = settings.values.get("code_src")
    if settings.layers.get("code_src") not in ("flag", "env") or not isinstance(code_src, str):
        return None
    if uri_scheme(code_src) not in ("", "file") or any(
        settings.values.get(k) is not None for k in ("code", "base64")
    ):
        return None
    path = Path(code_src.removeprefix("file://") if uri_scheme(code_src) else code_src)
    found = config_in(path)
    read = None if found is None else read_config(found)
    if read is None:
        return None
    data, base = read
    source = {k: v for k, v in data["function"]["source"].items() if k not in CODE_FIELDS}
    data["function"]["source"] = {**source, "code_src": str(path.resolve())}
    layers = {**settings.layers, "code_src": "default"}
    return data, base, Settings(settings.values, layers)


def overlay(data: dict[str, Any], base: Optional[Path], settings: Settings) -> dict[str, Any]:
    """The document `data` with the settings given by env or flag laid over it."""
    from wrapper.spec.models import PythonVersion, nest_source

    if not all(isinstance(data.get(k, {}), dict) for k in ("function", "run")):
        return data  # validation names the malformed part
    given = {k: v for k, v in settings.values.items() if settings.layers.get(k) in ("flag", "env")}
    try:
        function = nest_source(data.get("function", {}))
    except ValueError as exc:
        raise SpecError(f"invalid run spec:\n  function: {exc}") from None
    if not isinstance(function["source"], dict):
        return data
    run = dict(data.get("run", {}))
    source = _local_paths_from(function.pop("source"), base)
    code_layers = [settings.layers[k] for k in CODE_FIELDS if k in given]
    if code_layers:
        top = "flag" if "flag" in code_layers else "env"
        source = {k: given[k] for k in CODE_FIELDS if k in given and settings.layers[k] == top}
    source.update({k: given[k] for k in SOURCE_SETTINGS if k in given})
    function["source"] = source
    function.update({k: given[k] for k in FUNCTION_SETTINGS if k in given})
    if "function" not in data:
        function.setdefault("name", _default_name(source))
        running = PythonVersion.running()
        if running:
            function.setdefault("python_version", running.value)
    for key in MERGED_SETTINGS:
        if key in given:
            earlier = run.get(key)
            run[key] = {**(earlier if isinstance(earlier, dict) else {}), **given[key]}
    return {**data, "function": function, "run": run}


def _local_paths_from(source: dict[str, Any], base: Optional[Path]) -> dict[str, Any]:
    """The document's source, with a relative local `code_src` made to start at the spec file."""
    source = dict(source)
    code_src = source.get("code_src")
    inline = source.get("code") is not None or source.get("base64") is not None
    if base and isinstance(code_src, str) and not inline and not uri_scheme(code_src):
        source["code_src"] = str(base / code_src)
    return source


def _default_name(source: dict[str, Any]) -> str:
    code_src = source.get("code_src")
    if isinstance(code_src, str) and code_src.strip("/"):
        return Path(code_src.rstrip("/")).stem or "function"
    return "function"


def source_settings(settings: Settings, environ: Mapping[str, str]) -> Any:
    """The `SourceSettings` (cache, limits, scoped git credentials) these settings ask for."""
    from wrapper.sources.settings import (
        ArchiveLimits,
        FetchLimits,
        SourceSettings,
        git_credentials_from,
    )

    return SourceSettings(
        cache_dir=Path(settings.cache_dir) if settings.cache_dir else None,
        limits=FetchLimits(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            total_timeout=settings.download_timeout,
            max_download_bytes=settings.max_download_size,
            max_redirects=settings.max_redirects,
        ),
        archive_limits=ArchiveLimits(
            max_members=settings.max_archive_members,
            max_unpacked_bytes=settings.max_unpacked_size,
        ),
        git_credentials=git_credentials_from(environ, settings.git_credential_hosts or ""),
        allow_git_http=bool(settings.allow_git_http),
    )

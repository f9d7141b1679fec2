"""Read a run spec document (inline JSON, stdin, JSON or YAML file) and validate it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, get_args

from wrapper.errors import SpecError


def read_document(value: str) -> tuple[dict[str, Any], Optional[Path]]:
    """Parse a `--spec` value; returns the document and the folder its relative paths start from.

    A value starting with `{` is inline JSON, `-` is standard input, anything else a path: a
    JSON or YAML file, a folder holding a Nuclio `function.yaml`, or a Python source file with
    a `# @nuclio.configure` block. A Nuclio function config becomes a run document
    (wrapper/spec/nuclio.py).
    """
    from wrapper.spec import nuclio

    if value.lstrip().startswith("{"):
        return _converted(_parse(value, "inline spec", "json"), None), None
    if value == "-":
        return _converted(_parse(sys.stdin.read(), "spec on standard input", None), None), None
    path = Path(value)
    if path.is_dir():
        path = path / nuclio.CONFIG_NAME
        if not path.is_file():
            raise SpecError(f"--spec: {value} is a folder with no {nuclio.CONFIG_NAME} in it")
    text = _read(path, value)
    folder = path.resolve().parent
    if path.suffix == ".py":
        config = nuclio.inline_config(text, f"spec file {value}")
        if config is None:
            raise SpecError(f"--spec: {value} has no `# @nuclio.configure` block")
        return nuclio.to_document(config, folder, path.resolve()), folder
    suffix = path.suffix.lower()
    syntax = "yaml" if suffix in (".yaml", ".yml") else "json" if suffix == ".json" else None
    return _converted(_parse(text, f"spec file {value}", syntax), folder), folder


def read_config(path: Path) -> Optional[tuple[dict[str, Any], Path]]:
    """The run document of the Nuclio config at `path` (a function.yaml, or a source file with
    an inline block, as `nuclio.config_in` finds them) and its folder; None when it is no
    Nuclio config after all (a source file without the block, a run document)."""
    from wrapper.spec import nuclio

    text = _read(path, str(path))
    folder = path.resolve().parent
    if path.suffix == ".py":
        config = nuclio.inline_config(text, str(path))
        if config is None:
            return None
        return nuclio.to_document(config, folder, path.resolve()), folder
    data = _parse(text, f"Nuclio config {path}", "yaml")
    if not nuclio.is_config(data):
        return None
    return nuclio.to_document(data, folder, None), folder


def _read(path: Path, value: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"--spec: cannot read {value}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"--spec: {value} is not UTF-8 text") from None


def _converted(data: dict[str, Any], folder: Optional[Path]) -> dict[str, Any]:
    """The document itself, or the run document of a Nuclio function config (its code in
    `folder`, or the current folder for one given inline)."""
    from wrapper.spec import nuclio

    if not nuclio.is_config(data):
        return data
    return nuclio.to_document(data, folder or Path.cwd(), None)


def _parse(text: str, origin: str, syntax: Optional[str]) -> dict[str, Any]:
    """Parse JSON or YAML text (syntax None: JSON, else YAML) into a mapping."""
    data: Any
    if syntax == "json" or (syntax is None and text.lstrip().startswith(("{", "["))):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{origin}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"{origin}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping {{function, task, run}}, got {_kind(data)}")
    return data


def validate_document(data: dict[str, Any]) -> Any:
    """Validate a document into a `RunDocument`; a bad one raises SpecError, one line per field."""
    from pydantic import ValidationError

    from wrapper.spec.models import RunDocument

    try:
        return RunDocument.model_validate(data)
    except ValidationError as exc:
        problems = "".join("\n  " + _describe(error) for error in exc.errors(include_url=False))
        raise SpecError("invalid run spec:" + problems) from None


def _describe(error: Any) -> str:
    """One line for one pydantic error: the field path, then what is wrong and what is allowed."""
    loc = error["loc"]
    path = _path(loc)
    kind = error["type"]
    value = error.get("input")
    if kind in ("enum", "literal_error"):
        allowed = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{path}: {value!r} is not one of {allowed}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{path}: expected a mapping, got {_kind(value)} {_short(value)}"
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_fields(loc[:-1])) or "none"
        return f"{path}: unknown field (allowed: {allowed})"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{path}: {message}"
    return f"{path}: {message} (got {_kind(value)} {_short(value)})"


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at `loc` inside a RunDocument (aliases, as users write them)."""
    from pydantic import BaseModel

    from wrapper.spec.models import SOURCE_FIELDS, FunctionSpec, RunDocument

    model: Any = RunDocument
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        candidates = [field.annotation, *_nested_args(field.annotation)]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    names = [f.alias or name for name, f in model.model_fields.items()]
    if model is FunctionSpec:
        names += [n for n in SOURCE_FIELDS if n not in names]
    return names


def _nested_args(annotation: Any) -> list[Any]:
    args = list(get_args(annotation))
    for arg in list(args):
        args += _nested_args(arg)
    return args


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""Nuclio function configurations as run documents (DESIGN §10).

A `function.yaml` (with or without `apiVersion`/`kind`, a `metadata`/`spec` document), a
folder holding one, or the `# @nuclio.configure` block of a source file is read as a run
document: each field with a meaning here is mapped (docs/specs-and-configuration.md has the
table), what only a Nuclio deployment uses is kept under the document's `nuclio` section for
`render`, and every other field is named in one warning. Keys match case-insensitively, as
Go's JSON decoding (which Nuclio's config reader uses) matches them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from wrapper.errors import SpecError

CONFIG_NAME = "function.yaml"
BLOCK_START = "#@nuclio."
"""A comment line that, without its spaces, starts with this opens an inline block."""

_METADATA = ("name", "namespace", "labels", "annotations")
_SPEC = (
    "description", "handler", "runtime", "env", "build", "triggers", "minReplicas",
    "maxReplicas", "replicas", "targetCPU", "resources", "nodeSelector", "affinity",
    "tolerations", "serviceType", "eventTimeout", "disableDefaultHTTPTrigger",
)  # fmt: skip
_BUILD = (
    "commands", "directives", "functionSourceCode", "path", "codeEntryType", "codeEntryAttributes",
)  # fmt: skip
_RESOURCES = {"cpu": "cpu", "memory": "mem", "nvidia.com/gpu": "gpu"}
_CREDENTIAL_ATTRIBUTES = ("s3AccessKeyId", "s3SecretAccessKey", "s3SessionToken", "headers")
_GO_DURATION = re.compile(r"(?:([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PIP = re.compile(r"(?:python3?(?:\.[0-9]+)? -m )?pip3? install")
_HARMLESS_PIP_OPTIONS = ("-q", "--quiet", "-U", "--upgrade", "--no-cache-dir", "--progress-bar")


def is_config(data: dict[str, Any]) -> bool:
    """A Nuclio function config rather than a `{function, task, run}` document."""
    keys = {str(key).lower(): value for key, value in data.items()}
    if any(key in data for key in ("function", "task", "run")):
        return False
    kind, api = str(keys.get("kind", "")), str(keys.get("apiversion", ""))
    return kind == "NuclioFunction" or api.startswith("nuclio.io/") or "spec" in keys


def inline_config(text: str, origin: str) -> Optional[dict[str, Any]]:
    """The `function.yaml` of a source file's `# @nuclio.configure` block, read as Nuclio's
    builder reads it (the block runs until the first line that is not a comment); None when
    the file has no such block."""
    import yaml

    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not line.replace(" ", "").startswith(BLOCK_START + "configure"):
            continue
        block = []
        for inner in lines[number + 1 :]:
            if not inner.startswith("#"):
                break
            block.append(inner[2:] if len(inner) > 1 else "")
        try:
            contents = yaml.safe_load("\n".join(block))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {number + 2 + mark.line})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError(f"{origin}: the @nuclio.configure block{where}: {problem}") from None
        config = contents.get(CONFIG_NAME) if isinstance(contents, dict) else None
        if not isinstance(config, dict):
            raise SpecError(
                f"{origin}: the @nuclio.configure block has no `{CONFIG_NAME}:` mapping"
            )
        return config
    return None


def config_in(path: Path) -> Optional[Path]:
    """The Nuclio config a local code path holds: a folder's function.yaml, or the source file
    itself when it has an inline block; None otherwise."""
    if path.is_dir():
        found = path / CONFIG_NAME
        return found if found.is_file() else None
    if path.suffix == ".py" and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None  # the source reader reports it
        return path if "@nuclio.configure" in text.replace(" ", "") else None
    return None


def to_document(config: dict[str, Any], folder: Path, code_file: Optional[Path]) -> dict[str, Any]:
    """The run document of a Nuclio config found in `folder` (inline in `code_file`, if
    given). A malformed field is a SpecError naming its Nuclio path."""
    reader = _Reader()
    top = reader.section(config, "", ("apiVersion", "kind", "metadata", "spec"))
    metadata = reader.section(top.get("metadata") or {}, "metadata", _METADATA)
    spec = reader.section(top.get("spec") or {}, "spec", _SPEC)
    build = reader.section(spec.get("build") or {}, "spec.build", _BUILD)
    function: dict[str, Any] = {
        "name": metadata.get("name") or (code_file.stem if code_file else folder.name),
        "python_version": _python_version(spec.get("runtime")),
    }
    if spec.get("description") is not None:
        function["description"] = spec["description"]
    labels = reader.mapping(metadata, "labels", "metadata")
    function["labels"] = [f"{key}={value}" for key, value in labels.items()]
    source, kept_entry = _source(reader, build, folder, code_file)
    handler = spec.get("handler") or (f"{code_file.stem}:handler" if code_file else None)
    if handler is not None:
        source["handler"] = handler
    module, _, _ = str(handler or "").rpartition(":")
    if "base64" in source and module:  # written where Nuclio writes it: the handler's module
        source["code_src"] = module.replace(".", "/") + ".py"
    function["source"] = source
    requirements, instructions = _commands(reader, _build_commands(reader, build))
    function["requirements"] = requirements
    task: dict[str, Any] = {"instructions": instructions, "envs": _env(reader, spec.get("env"))}
    section: dict[str, Any] = {"code_entry": kept_entry}
    _scaling(reader, spec, task, section)
    _placement(reader, spec, task)
    section["triggers"] = _triggers(reader, spec, section)
    for key in ("namespace", "annotations"):
        if metadata.get(key) is not None:
            section[key] = metadata[key]
    if spec.get("disableDefaultHTTPTrigger") is not None:
        section["disable_default_http_trigger"] = spec["disableDefaultHTTPTrigger"]
    section["unmapped"] = reader.unmapped
    return {"function": function, "task": task, "nuclio": section}


class _Reader:
    """Reads sections of a config, matching keys as Go does and noting the unmapped ones."""

    def __init__(self) -> None:
        self.unmapped: list[str] = []

    def section(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SpecError(f"Nuclio config: {path or 'document'}: expected a mapping, got"
                            f" {type(value).__name__}")  # fmt: skip
        by_lower = {name.lower(): name for name in known}
        read: dict[str, Any] = {}
        for key, item in value.items():
            name = by_lower.get(str(key).lower())
            if name is None:
                self.unmapped.append(f"{path}.{key}" if path else str(key))
            elif name not in read or key == name:  # Go prefers the exact spelling
                read[name] = item
        return read

    def mapping(self, section: dict[str, Any], key: str, path: str) -> dict[str, str]:
        value = section.get(key) or {}
        if not isinstance(value, dict) or any(isinstance(v, (dict, list)) for v in value.values()):
            raise SpecError(f"Nuclio config: {path}.{key}: expected a mapping of names to values")
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def text(self, value: Any, path: str) -> Optional[str]:
        if value is not None and not isinstance(value, str):
            raise SpecError(f"Nuclio config: {path}: expected a string, got {value!r}")
        return value

    def whole(self, value: Any, path: str) -> Optional[int]:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SpecError(f"Nuclio config: {path}: expected a whole number, got {value!r}")
        return value


def _python_version(runtime: Any) -> str:
    """`python:3.X` → PYTHON3_X; `python` (or none) → this interpreter's version."""
    from wrapper.spec.models import PythonVersion

    text = "python" if runtime is None else str(runtime)
    name, _, version = text.partition(":")
    if name != "python":
        raise SpecError(
            f"Nuclio config: spec.runtime {text!r}: fn-wrapper runs Python functions"
            " (python, python:3.9 … python:3.13)"
        )
    if not version:
        running = PythonVersion.running()
        return running.value if running else PythonVersion.PYTHON3_11.value
    member = "PYTHON" + version.replace(".", "_")
    if member not in PythonVersion.__members__:
        allowed = ", ".join(f"python:{v.version}" for v in PythonVersion)
        raise SpecError(f"Nuclio config: spec.runtime {text!r} is not one of python, {allowed}")
    return member


def _source(
    reader: _Reader, build: dict[str, Any], folder: Path, code_file: Optional[Path]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The function's source, and Nuclio's code entry as the config gave it (for render)."""
    encoded = reader.text(build.get("functionSourceCode"), "spec.build.functionSourceCode")
    path = reader.text(build.get("path"), "spec.build.path")
    kind = reader.text(build.get("codeEntryType"), "spec.build.codeEntryType")
    attributes = build.get("codeEntryAttributes") or {}
    if not isinstance(attributes, dict):
        raise SpecError("Nuclio config: spec.build.codeEntryAttributes: expected a mapping")
    for name in _CREDENTIAL_ATTRIBUTES:
        if name in attributes:
            reader.unmapped.append(f"spec.build.codeEntryAttributes.{name} (a credential: dropped)")
    attributes = {k: v for k, v in attributes.items() if k not in _CREDENTIAL_ATTRIBUTES}
    entry = {
        key: value
        for key, value in (
            ("codeEntryType", kind),
            ("path", path),
            ("functionSourceCode", encoded),
            ("codeEntryAttributes", attributes or None),
        )
        if value is not None
    }
    if encoded is not None:
        return {"base64": encoded}, entry
    if kind == "image":
        return {}, entry
    if kind == "s3":
        bucket, key = attributes.get("s3Bucket"), attributes.get("s3ItemKey")
        if not (isinstance(bucket, str) and isinstance(key, str) and bucket and key):
            raise SpecError(
                "Nuclio config: spec.build.codeEntryAttributes: codeEntryType s3 needs s3Bucket"
                " and s3ItemKey"
            )
        _unmapped_attributes(reader, attributes, ("s3Bucket", "s3ItemKey"))
        return {"code_src": f"s3://{bucket}/{key}"}, entry
    if path:
        return {"code_src": _code_src(reader, kind, path, attributes, folder)}, entry
    return {"code_src": str(code_file or folder)}, entry


def _code_src(
    reader: _Reader, kind: Optional[str], path: str, attributes: dict[str, Any], folder: Path
) -> str:
    """The code_src of `spec.build.path` for its code entry type."""
    scheme = urlsplit(path).scheme.lower()
    if kind in ("github", "git"):
        ref = next(
            (str(attributes[k]) for k in ("reference", "tag", "branch") if attributes.get(k)), ""
        )
        work_dir = str(attributes.get("workDir") or "").strip("/")
        _unmapped_attributes(reader, attributes, ("reference", "tag", "branch", "workDir"))
        fragment = f"{ref}:{work_dir}" if work_dir else ref
        url = path if path.startswith("git+") else f"git+{path}"
        return f"{url}#{fragment}" if fragment else url
    _unmapped_attributes(reader, attributes, ())
    if kind == "archive" and scheme in ("http", "https"):
        archive = path.lower().split("?")[0].endswith((".zip", ".tar.gz", ".tgz"))
        return path if archive else f"zip+{path}"
    if scheme:
        return path
    return str(folder / path)


def _unmapped_attributes(
    reader: _Reader, attributes: dict[str, Any], used: tuple[str, ...]
) -> None:
    reader.unmapped += [
        f"spec.build.codeEntryAttributes.{name}" for name in attributes if name not in used
    ]


def _build_commands(reader: _Reader, build: dict[str, Any]) -> Any:
    """The build's commands; with none, the RUN steps of its directives (Nuclio reads
    directives only when there are no commands). USER steps need no mapping: build
    instructions run as root, the function as user 1000."""
    directives = build.get("directives")
    if build.get("commands") or directives is None:
        if directives is not None:
            reader.unmapped.append("spec.build.directives (Nuclio ignores them beside commands)")
        return build.get("commands")
    if not isinstance(directives, dict):
        raise SpecError("Nuclio config: spec.build.directives: expected {preCopy, postCopy}")
    commands: list[str] = []
    for phase in ("preCopy", "postCopy"):
        steps = directives.get(phase) or []
        if phase == "postCopy" and steps:
            commands.append("@nuclio.postCopy")
        for number, step in enumerate(steps if isinstance(steps, list) else [steps]):
            path = f"spec.build.directives.{phase}[{number}]"
            if not isinstance(step, dict) or not isinstance(step.get("value"), str):
                raise SpecError(f"Nuclio config: {path}: expected {{kind, value}}")
            kind = str(step.get("kind", "")).upper()
            if kind == "RUN":
                commands.append(step["value"])
            elif kind != "USER":
                reader.unmapped.append(f"{path} ({kind or 'no kind'})")
    reader.unmapped += [
        f"spec.build.directives.{key}" for key in directives if key not in ("preCopy", "postCopy")
    ]
    return commands


def _commands(reader: _Reader, commands: Any) -> tuple[list[str], list[str]]:
    """Build commands: `pip install` of plain requirements → requirements, the rest (apt-get,
    pip with an index or a file, ...) → build instructions. Lines ending with a backslash
    continue on the next, as Nuclio joins them."""
    if commands is None:
        return [], []
    if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
        raise SpecError("Nuclio config: spec.build.commands: expected a list of strings")
    joined: list[str] = []
    pending = ""
    for command in commands:
        if command.strip() == "@nuclio.postCopy":
            reader.unmapped.append(
                "spec.build.commands @nuclio.postCopy (the commands after it run before the"
                " code is copied, as all build instructions do)"
            )
            continue
        if command.endswith("\\"):
            pending += command[:-1]
            continue
        joined.append(pending + command)
        pending = ""
    if pending:
        joined.append(pending)
    requirements: list[str] = []
    instructions: list[str] = []
    for command in joined:
        found = _pip_requirements(command)
        if found is None:
            instructions.append(command)
        else:
            requirements += found
    return requirements, instructions


def _pip_requirements(command: str) -> Optional[list[str]]:
    """The requirements a plain `pip install a b` installs; None for any other command."""
    from packaging.requirements import InvalidRequirement, Requirement

    match = _PIP.match(command.strip())
    if match is None or any(c in command for c in "`$\n"):
        return None
    lexer = shlex.shlex(command.strip()[match.end() :], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return None
    if any(word and set(word) <= set(lexer.punctuation_chars) for word in words):
        return None  # a shell operator: && ; | > ...
    wanted = []
    for word in words:
        if word in _HARMLESS_PIP_OPTIONS or word.startswith("--progress-bar="):
            continue
        if word.startswith("-"):
            return None
        try:
            Requirement(word)
        except InvalidRequirement:
            return None
        wanted.append(word)
    return wanted or None


def _env(reader: _Reader, env: Any) -> list[dict[str, Any]]:
    """`spec.env` items: a value, or a `valueFrom` reference kept for render."""
    if env is None:
        return []
    if isinstance(env, dict):  # the reference calls it a map; some configs write one
        env = [{"name": k, "value": v} for k, v in env.items()]
    if not isinstance(env, list):
        raise SpecError("Nuclio config: spec.env: expected a list of {name, value} items")
    items = []
    for number, item in enumerate(env):
        path = f"spec.env[{number}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SpecError(
                f"Nuclio config: {path}: expected {{name, value}} or {{name, valueFrom}}"
            )
        if item.get("valueFrom") is not None:
            if not isinstance(item["valueFrom"], dict):
                raise SpecError(f"Nuclio config: {path}.valueFrom: expected a mapping")
            items.append({"name": item["name"], "value_from": item["valueFrom"]})
            continue
        value = item.get("value")
        if isinstance(value, (dict, list)):
            raise SpecError(f"Nuclio config: {path}.value: expected a string, got {value!r}")
        items.append({"name": item["name"], "value": "" if value is None else str(value)})
    return items


def _scaling(
    reader: _Reader, spec: dict[str, Any], task: dict[str, Any], section: dict[str, Any]
) -> None:
    """Replicas, the autoscaling target and the event timeout."""
    replicas = reader.whole(spec.get("replicas"), "spec.replicas")
    minimum = reader.whole(spec.get("minReplicas"), "spec.minReplicas")
    maximum = reader.whole(spec.get("maxReplicas"), "spec.maxReplicas")
    if replicas is not None and replicas > 0:  # a fixed count (0: Nuclio autoscales)
        minimum = maximum = replicas
    if minimum is not None:
        task["replicas"] = minimum
    if maximum is not None:
        section["max_replicas"] = maximum
    target = reader.whole(spec.get("targetCPU"), "spec.targetCPU")
    if target:
        section["target_cpu"] = target
    timeout = reader.text(spec.get("eventTimeout"), "spec.eventTimeout")
    if timeout:
        go_duration(timeout, "spec.eventTimeout")
        section["event_timeout"] = timeout
    resources = spec.get("resources") or {}
    if not isinstance(resources, dict):
        raise SpecError("Nuclio config: spec.resources: expected {requests, limits}")
    mapped: dict[str, dict[str, Any]] = {}
    for side, amounts in resources.items():
        if side not in ("requests", "limits") or not isinstance(amounts, dict):
            reader.unmapped.append(f"spec.resources.{side}")
            continue
        for name, amount in amounts.items():
            ours = _RESOURCES.get(name)
            if ours is None:
                reader.unmapped.append(f"spec.resources.{side}.{name}")
                continue
            mapped.setdefault(ours, {})[side] = amount
    if mapped:
        task["resources"] = mapped


def _placement(reader: _Reader, spec: dict[str, Any], task: dict[str, Any]) -> None:
    """Node selector, affinity, tolerations and service type (Kubernetes' shapes)."""
    selector = reader.mapping(spec, "nodeSelector", "spec")
    task["node_selector"] = [{"key": k, "value": v} for k, v in selector.items() if v]
    for ours, theirs in (("affinity", "affinity"), ("tolerations", "tolerations")):
        if spec.get(theirs) is not None:
            task[ours] = spec[theirs]
    if spec.get("serviceType") is not None:
        task["service_type"] = spec["serviceType"]


def _triggers(reader: _Reader, spec: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """The triggers as given; the HTTP trigger's numWorkers (or deprecated maxWorkers) gives
    the serve door's workers. Other kinds are kept for render only."""
    triggers = spec.get("triggers") or {}
    if not isinstance(triggers, dict):
        raise SpecError("Nuclio config: spec.triggers: expected a mapping of names to triggers")
    for name, trigger in triggers.items():
        path = f"spec.triggers.{name}"
        if not isinstance(trigger, dict) or not isinstance(trigger.get("kind"), str):
            raise SpecError(f"Nuclio config: {path}: expected a mapping with a kind")
        if trigger["kind"] != "http":
            reader.unmapped.append(f"{path} (kind {trigger['kind']}: kept for render)")
            continue
        workers = trigger.get("numWorkers") or trigger.get("maxWorkers")
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise SpecError(f"Nuclio config: {path}.numWorkers: expected 1 or more")
            section["workers"] = workers
    return triggers


def go_duration(text: str, field: str) -> float:
    """Seconds in a Go duration (`30s`, `1m30s`, `500ms`); a bad one is a SpecError."""
    if not _GO_DURATION.fullmatch(text.strip()):
        raise SpecError(f"Nuclio config: {field} {text!r} is not a duration (e.g. 30s, 1m30s)")
    total = sum(
        float(number) * _GO_UNITS[unit]
        for number, unit in re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", text)
    )
    if total <= 0:
        raise SpecError(f"Nuclio config: {field} {text!r} must be more than 0")
    return total

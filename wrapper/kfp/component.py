"""A Kubeflow Pipelines component of a function, from its handler's source (never run).

The handler's signature is read with `ast`: `render` must not run user code. Its parameters
are the component's input parameters (types from annotations, else defaults), its entity
inputs (DataItem, Artifact, Model, or a `run.inputs` name) input artifacts, and its declared
outputs (`@handler(outputs=[…])`, typed or with a return annotation) output artifacts or
output parameters. The container runs the job door, each value as its own argument.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Optional

from wrapper.errors import SpecError
from wrapper.invocation import RESERVED
from wrapper.loader import HandlerRef, default_module_file
from wrapper.sources import SourceTree

PARAMETER_TYPES = {
    "int": "Integer", "float": "Float", "str": "String", "bool": "Boolean",
    "dict": "JsonObject", "Dict": "JsonObject", "list": "JsonArray", "List": "JsonArray",
}  # fmt: skip
"""Python annotations (and default values' types) → KFP parameter types."""
ARTIFACT_TYPES = {"DataItem": "Dataset", "Artifact": "Artifact", "Model": "Model"}
"""Entity annotations → KFP artifact types (the job door's entity per type: ENTITY_TYPES)."""
ENTITY_TYPES = {"Dataset": "dataitem", "Artifact": "artifact", "Model": "model"}
_RESULTS = {"int": "Integer", "float": "Float", "str": "String", "bool": "Boolean"}
"""Return annotations the job door keeps as results (output parameters)."""
_RETURNED_ARTIFACTS = {"DataFrame": "Dataset", "Path": "Artifact", "PurePath": "Artifact"}
_KIND_TYPES = {
    "dataitem": "Dataset", "table": "Dataset", "croissant": "Dataset", "artifact": "Artifact",
    "model": "Model", "sklearn": "Model", "mlflow": "Model",
}  # fmt: skip
"""Typed output declarations' kinds → KFP artifact types."""


@dataclass(frozen=True)
class Port:
    """One input or output of the component."""

    name: str
    type: str
    default: Any = None
    optional: bool = False

    @property
    def artifact(self) -> bool:
        return self.type in ENTITY_TYPES


def component_spec(
    document: dict[str, Any], root: Path, single_file: Optional[str], image: str
) -> dict[str, Any]:
    """The KFP component (the YAML `kfp.components.load_component_from_file` reads) of the
    function in `document`, its source materialised at `root`, run in `image`."""
    function, run = document["function"], document["run"]
    handler = function["source"]["handler"]
    node, outputs_declared = _handler_node(root, single_file, handler)
    inputs = _inputs(node, run)
    outputs = _outputs(node, outputs_declared, handler)
    args: list[Any] = []
    for port in inputs:
        flag, placeholder = (
            ("--kfp-input", "inputPath") if port.artifact else ("--kfp-parameter", "inputValue")
        )
        args += [flag, port.name, port.type, {placeholder: port.name}]
    for port in outputs:
        args += ["--kfp-output", port.name, port.type, {"outputPath": port.name}]
    return {
        "name": function["name"],
        "description": function.get("description") or f"fn-wrapper function {function['name']}",
        "inputs": [_input(port) for port in inputs],
        "outputs": [{"name": p.name, "type": p.type} for p in outputs],
        "implementation": {
            "container": {"image": image, "command": ["fn-wrapper", "job"], "args": args}
        },
    }


def _input(port: Port) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": port.name, "type": port.type}
    if port.optional:
        entry["optional"] = True
        if port.default is not None:
            text = port.default if isinstance(port.default, str) else json.dumps(port.default)
            entry["default"] = text
    return entry


def _handler_node(
    root: Path, single_file: Optional[str], handler: str
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[Any]]:
    """The handler's definition in its module's syntax tree, and its declared outputs."""
    ref = HandlerRef.parse(handler)
    path = _module_file(root, single_file, ref)
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise SpecError(
            f"handler {handler!r}: syntax error in {path.name} line {exc.lineno}: {exc.msg}"
        ) from None
    first, _, method = ref.attr.partition(".")
    scope: list[ast.stmt] = module.body
    if method:
        owner = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == first), None)
        if owner is None:
            raise SpecError(f"handler {handler!r}: no class {first!r} in {path.name}")
        scope, first = owner.body, method
    node = next(
        (
            n
            for n in scope
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == first
        ),
        None,
    )
    if node is None:
        raise SpecError(f"handler {handler!r}: no function {first!r} defined in {path.name}")
    return node, _declared_outputs(node)


def _module_file(root: Path, single_file: Optional[str], ref: HandlerRef) -> Path:
    if ref.file:
        candidates = [root / ref.file]
    elif ref.module:
        dotted = Path(*ref.module.split("."))
        candidates = [root / dotted.with_suffix(".py"), root / dotted / "__init__.py"]
    else:
        candidates = [root / default_module_file(SourceTree(root, single_file))]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise SpecError(f"handler {ref.text!r}: no module file for it in the source")
    return found


def _declared_outputs(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Any]:
    """`outputs=[…]` of a `@handler(...)` decorator (fn-wrapper's or DigitalHub's), as
    literals: names, or `{"name": …, "kind": …}` declarations."""
    for decorator in node.decorator_list:
        if not isinstance(decorator, ast.Call) or _name(decorator.func) != "handler":
            continue
        for keyword in decorator.keywords:
            if keyword.arg == "outputs":
                try:
                    value = ast.literal_eval(keyword.value)
                except ValueError:
                    raise SpecError(
                        f"handler {node.name!r}: @handler(outputs=…) must be a literal list"
                        " for a component (render does not run the code)"
                    ) from None
                return list(value)
    return []


def _inputs(node: ast.FunctionDef | ast.AsyncFunctionDef, run: dict[str, Any]) -> list[Port]:
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults: dict[str, ast.expr] = dict(
        zip(
            [a.arg for a in positional][len(positional) - len(arguments.defaults) :],
            arguments.defaults,
        )
    )
    defaults.update(
        {a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None}
    )
    ports = []
    for index, argument in enumerate([*positional, *arguments.kwonlyargs]):
        name = argument.arg
        if name in RESERVED or (index == 0 and name in ("self", "cls")):
            continue
        ports.append(_input_port(name, argument.annotation, defaults.get(name), run))
    return ports


def _input_port(
    name: str, annotation: Optional[ast.expr], default: Optional[ast.expr], run: dict[str, Any]
) -> Port:
    given = run.get("parameters", {})
    entity_key = run.get("inputs", {}).get(name)
    annotated = _annotation(annotation)
    if annotated in ARTIFACT_TYPES:
        return Port(name, ARTIFACT_TYPES[annotated])
    if entity_key is not None:
        entity_type = str(entity_key).split("/")[3] if str(entity_key).count("/") >= 4 else ""
        kfp_type = {v: k for k, v in ENTITY_TYPES.items()}.get(entity_type, "Dataset")
        return Port(name, kfp_type)
    value = _literal(default)
    if name in given:
        value = given[name]
    kfp_type = PARAMETER_TYPES.get(annotated or "") or PARAMETER_TYPES.get(
        type(value).__name__, "String"
    )
    optional = default is not None or name in given
    return Port(name, kfp_type, value, optional)


def _outputs(
    node: ast.FunctionDef | ast.AsyncFunctionDef, declared: list[Any], handler: str
) -> list[Port]:
    """The declared outputs with their types: a typed declaration's kind, else the return
    annotation at that position (a tuple's items, or the one value). With no declaration,
    the annotated values are `output_<n>`, as the job door names them."""
    returned = _returned(node.returns)
    if returned in (["list"], ["List"]):
        raise SpecError(
            f"handler {handler!r}: returns a list, which the job door keeps as one output per"
            " item: return a tuple, and declare or annotate each item"
        )
    if not declared and returned != ["None"]:  # named as the job door names them
        declared = [f"output_{position}" for position in range(len(returned))]
    ports = []
    for position, declaration in enumerate(declared):
        if isinstance(declaration, dict):
            name, kind = str(declaration.get("name")), str(declaration.get("kind", ""))
            kfp_type = _KIND_TYPES.get(kind)
            if kfp_type is None:
                raise SpecError(
                    f"handler {handler!r}: output {name!r}: kind {kind!r} is not one of"
                    f" {', '.join(_KIND_TYPES)}"
                )
        else:
            name = str(declaration)
            annotated = returned[position] if position < len(returned) else None
            kfp_type = _RESULTS.get(annotated or "") or _RETURNED_ARTIFACTS.get(annotated or "")
            if kfp_type is None and annotated is not None:
                kfp_type = "Artifact"  # any other object is pickled into an artifact
            if kfp_type is None:
                raise SpecError(
                    f"handler {handler!r}: output {name!r}: its kind cannot be known without"
                    ' running the code: declare it typed ({"name": …, "kind": "table"})'
                    " or annotate the handler's return value"
                )
        ports.append(Port(name, kfp_type))
    return ports


def _returned(annotation: Optional[ast.expr]) -> list[Optional[str]]:
    """The annotated type of each returned value: a tuple's items, else the one value."""
    if annotation is None:
        return []
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    if isinstance(annotation, ast.Subscript) and _name(annotation.value) in ("tuple", "Tuple"):
        items = annotation.slice
        elements = items.elts if isinstance(items, ast.Tuple) else [items]
        return [_annotation(e) for e in elements]
    return [_annotation(annotation)]


def _annotation(annotation: Optional[ast.expr]) -> Optional[str]:
    """The type name an annotation stands for (`pd.DataFrame` → DataFrame, `dict[str, int]` →
    dict, `Optional[int]` → int, `"int"` → int)."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _annotation(ast.parse(annotation.value, mode="eval").body)
    if isinstance(annotation, ast.Subscript):
        if _name(annotation.value) == "Optional":
            return _annotation(annotation.slice)
        return _name(annotation.value)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):  # X | None
        sides = [s for s in (annotation.left, annotation.right) if _name(s) != "None"]
        return _annotation(sides[0]) if len(sides) == 1 else None
    return _name(annotation)


def _name(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return None


def _literal(node: Optional[ast.expr]) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None  # a default computed at import: the component gives none


@dataclass(frozen=True)
class Decorated:
    """A KFP component function (`@dsl.component(...)`) found in a source file."""

    file: str
    """Its file, relative to the source folder (POSIX)."""
    function: str
    options: dict[str, Any]
    """The decorator's literal keywords (base_image, target_image, packages_to_install, …)."""

    @property
    def handler(self) -> str:
        return f"{self.file}:{self.function}"


def decorated_components(folder: Path, pattern: str) -> list[Decorated]:
    """The `@dsl.component` functions of the files under `folder` whose path (relative,
    POSIX) or name matches `pattern`, as `kfp component build --component-filepattern` finds
    them; read with ast, never run."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder).as_posix()
        if not (fnmatch(relative, pattern) or fnmatch(path.name, pattern)):
            continue
        try:
            module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise SpecError(f"{relative} line {exc.lineno}: syntax error: {exc.msg}") from None
        for node in module.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if _name(call.func if call else decorator) != "component":
                    continue
                options = {}
                for keyword in call.keywords if call else []:
                    try:
                        options[str(keyword.arg)] = ast.literal_eval(keyword.value)
                    except ValueError:
                        continue  # computed at import: not known without running the code
                found.append(Decorated(relative, node.name, options))
    return found

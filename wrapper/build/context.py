"""A function's build context (DESIGN §8): everything an image build reads, in one folder.

    Containerfile          generated (wrapper/build/containerfile.py)
    function/code/         the materialised source, as the core would import it
    function/run.json      the run spec the image runs with (FN_WRAPPER_SPEC): the function
                           with its code_src pointing at the image's copy, and the run's
                           parameters and init parameters (no inputs, no task settings)
    wheels/                the requirements' wheels the base image lacks, requirements.txt
                           naming them, the runtime's pins as constraints.txt (when needed)

Nothing else goes in: no credential the source was fetched with (the code_src in run.json is
the image's local path) or a requirement was written with (wrapper/build/wheels.py), no
version-control folder, `.env` or ignored file of the source (wrapper/build/ignore.py), no
environment, no task secrets.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

from wrapper.build.containerfile import APP, Recipe, render
from wrapper.build.ignore import source_ignore
from wrapper.build.runtimes import runtime
from wrapper.build.wheels import function_wheels
from wrapper.errors import SpecError
from wrapper.plan import FunctionPlan


class BuildPlan(NamedTuple):
    """What a build needs from a validated run document: the function, and how its image is
    made."""

    function: FunctionPlan
    requirements: tuple[str, ...] = ()
    base_image: Optional[str] = None
    instructions: tuple[str, ...] = ()

    @classmethod
    def from_dump(cls, document: dict[str, Any]) -> BuildPlan:
        """From `RunDocument.model_dump(mode="json")`."""
        function, task = document["function"], document["task"]
        return cls(
            FunctionPlan.from_dump(document),
            tuple(function["requirements"]),
            function["base_image"],
            tuple(task.get("instructions") or ()),
        )


class ContextSettings(NamedTuple):
    """How a context is made: where wheels come from, which base images are allowed."""

    source_settings: Any = None
    wheelhouses: Sequence[Path] = ()
    use_index: bool = True
    allowed_base_images: Sequence[str] = ()
    """Patterns (fnmatch) of the base images a build accepts; empty: any."""


def write_context(plan: BuildPlan, folder: Path, settings: ContextSettings) -> Recipe:
    """Fill `folder` (new or empty) with the build context of `plan`; the image's recipe."""
    from wrapper.sources import materialise_source

    function = plan.function
    found = runtime(function.python_version)
    base_image = plan.base_image or found.base_image
    allowed(base_image, settings.allowed_base_images)
    if folder.exists() and any(folder.iterdir()):
        raise SpecError(f"--context-dir {folder}: not empty (a build context needs a new folder)")
    tree = materialise_source(function, settings.source_settings)
    code = folder / "function" / "code"
    if tree.single_file:  # the file only, never the folder around it
        code.mkdir(parents=True)
        shutil.copy(tree.root / tree.single_file, code)
    else:
        shutil.copytree(tree.root, code, ignore=source_ignore(tree.root))
    local = f"{APP}/code" + (f"/{tree.single_file}" if tree.single_file else "")
    run_spec = {
        "function": {
            "name": function.name,
            "python_version": function.python_version,
            "code_src": local,
            "handler": function.handler,
            "init_function": function.init_function,
        },
        "run": {"parameters": function.parameters, "init_parameters": function.init_parameters},
    }
    (folder / "function" / "run.json").write_text(json.dumps(run_spec, indent=2) + "\n")
    readable(folder / "function")
    pins = function_wheels(
        plan.requirements, folder / "wheels", found, settings.wheelhouses, settings.use_index
    )
    recipe = Recipe(function.name, base_image, bool(pins), plan.instructions)
    (folder / "Containerfile").write_text(render(recipe))
    return recipe


ALLOW_LIST = "FN_WRAPPER_ALLOWED_BASE_IMAGE"
"""The operator's allow-list of base images: an environment setting only, never a flag, so
whoever asks for a build cannot widen it."""


def operator_allow_list(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The base image patterns `ALLOW_LIST` holds (a JSON array of strings); empty: any."""
    text = environ.get(ALLOW_LIST, "").strip()
    if not text:
        return ()
    try:
        patterns = json.loads(text)
    except ValueError:
        patterns = None
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise SpecError(f"{ALLOW_LIST}: {text!r} is not a JSON array of image patterns")
    return tuple(patterns)


def allowed(base_image: str, patterns: Sequence[str]) -> None:
    """A SpecError before anything is built when the operator's allow-list refuses it."""
    if patterns and not any(fnmatch.fnmatchcase(base_image, p) for p in patterns):
        raise SpecError(
            f"base_image {base_image!r} is not allowed here (allowed: {', '.join(patterns)};"
            f" set by the operator in {ALLOW_LIST})"
        )


def readable(folder: Path) -> None:
    """Folders 755 and files 644 (755 if executable): the image's user (not root, who owns
    the copied files) reads the code whatever the source's modes or the umask were."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)

"""A function's build context (DESIGN §8): everything an image build reads, in one folder.

    Containerfile          generated (wrapper/build/containerfile.py)
    function/code/         the materialised source, as the core would import it
    function/run.json      the run spec the image runs with (FN_WRAPPER_SPEC): the function
                           with its code_src pointing at the image's copy; no run values
                           (parameters, init parameters, inputs reach the container when it
                           runs: the deploy door passes them as FN_WRAPPER_* twins)
    wheels/                the requirements' wheels the base image lacks, requirements.txt
                           naming them, the runtime's pins as constraints.txt (when needed)
    runtime/               on a base image whose name does not say fn-wrapper (python:3.11):
                           fn-wrapper's own wheel, its runtime's pinned dependencies' wheels
                           and those pins as constraints.txt, installed where it lacks them

Nothing else goes in: no run value (an init parameter may be an API key), no credential the
source was fetched with (the code_src in run.json is
the image's local path) or a requirement was written with (wrapper/build/wheels.py), no
version-control folder, `.env` or ignored file of the source (wrapper/build/ignore.py), no
environment, no task secrets.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

from wrapper.build.containerfile import APP, Recipe, render
from wrapper.build.ignore import source_ignore
from wrapper.build.own_wheel import write_own_wheel
from wrapper.build.runtimes import Runtime, runtime
from wrapper.build.wheels import download_wheels, function_wheels
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
    """Fill `folder` (new or empty) with the build context of `plan`; the image's recipe.

    The context is written in a new folder beside `folder` and renamed into place once whole:
    a failed build leaves nothing half written, and the same `folder` can be used again."""
    function = plan.function
    found = runtime(function.python_version)
    base_image = plan.base_image or found.base_image
    allowed(base_image, settings.allowed_base_images)
    if folder.exists() and not folder.is_dir():
        raise SpecError(f"--context-dir {folder}: not a folder (a build context needs a new one)")
    if folder.exists() and any(folder.iterdir()):
        raise SpecError(f"--context-dir {folder}: not empty (a build context needs a new folder)")
    made = next((p for p in reversed((folder, *folder.parents)) if not p.exists()), None)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        partial.chmod(0o755)
        recipe = _write(plan, partial, settings, found, base_image)
        os.replace(partial, folder)  # an empty folder is replaced, on POSIX systems
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if made is not None and made != folder:
            shutil.rmtree(made, ignore_errors=True)
        raise
    return recipe


def _write(
    plan: BuildPlan, folder: Path, settings: ContextSettings, found: Runtime, base_image: str
) -> Recipe:
    from wrapper.sources import materialise_source

    function = plan.function
    tree = materialise_source(function, settings.source_settings)
    code = folder / "function" / "code"
    if tree.single_file:  # the file only (at its path in the source), never the folder around it
        (code / tree.single_file).parent.mkdir(parents=True)
        shutil.copy(tree.root / tree.single_file, code / tree.single_file)
    else:
        copy_source(tree.root, code)
    local = f"{APP}/code" + (f"/{tree.single_file}" if tree.single_file else "")
    run_spec = {
        "function": {
            "name": function.name,
            "python_version": function.python_version,
            "code_src": local,
            "handler": function.handler,
            "init_function": function.init_function,
        },
    }
    (folder / "function" / "run.json").write_text(json.dumps(run_spec, indent=2) + "\n")
    readable(folder / "function")
    wheelhouses, limits = settings.wheelhouses, getattr(settings.source_settings, "limits", None)
    pins = function_wheels(  # limits None: the FN_WRAPPER_* download settings
        plan.requirements, folder / "wheels", found, wheelhouses, settings.use_index, limits
    )
    foreign = base_image != found.base_image and "fn-wrapper" not in base_image
    if foreign:  # fn-wrapper goes on top of it (wrapper/build/containerfile.py)
        runtime_wheels = folder / "runtime"
        runtime_wheels.mkdir()
        write_own_wheel(runtime_wheels)
        download_wheels(
            found.requirements, runtime_wheels, found, wheelhouses, settings.use_index, limits
        )
        shutil.copy(found.requirements, runtime_wheels / "constraints.txt")
    recipe = Recipe(function.name, base_image, bool(pins), plan.instructions, foreign)
    (folder / "Containerfile").write_text(render(recipe))
    return recipe


def copy_source(root: Path, code: Path) -> None:
    """Copy the source folder `root` to `code`, less what stays out (wrapper/build/ignore.py).

    A symbolic link is copied as a link (relative), and only when it points inside the folder:
    one to `/etc/passwd` or `~/.aws` would put the host's file into the image, so it is
    refused by name, as is a link that points nowhere."""
    leave_out = source_ignore(root)
    real_root = root.resolve()
    links: list[tuple[Path, str]] = []

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = leave_out(folder, names)
        for name in names:
            path = Path(folder, name)
            if name in ignored or not path.is_symlink():
                continue
            shown = path.relative_to(root).as_posix()
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError):  # no target, or a loop (RuntimeError before 3.13)
                raise SpecError(
                    f"code_src: the link {shown} -> {os.readlink(path)} points nowhere:"
                    " remove it, or leave it out in .dockerignore"
                ) from None
            if target != real_root and real_root not in target.parents:
                raise SpecError(
                    f"code_src: the link {shown} -> {os.readlink(path)} points outside the source"
                    " folder (its target would go into the image): copy the file in instead, or"
                    " leave the link out in .dockerignore"
                )
            relative = os.path.relpath(target, Path(folder).resolve())
            links.append((code / shown, relative))
            ignored.add(name)
        return ignored

    try:
        shutil.copytree(root, code, ignore=ignore)
        for link, target in links:
            os.symlink(target, link)
    except shutil.Error as error:
        failures = error.args[0]
        shown = (
            ", ".join(f"{f[0]} ({f[2]})" for f in failures) if isinstance(failures, list) else error
        )
        raise SpecError(f"code_src: cannot copy {shown}") from None
    except OSError as error:
        raise SpecError(f"code_src: cannot copy {error.filename}: {error.strerror}") from None


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
        if path.is_symlink():  # its target, inside the folder, has its own turn
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)

"""The Containerfile of a function image (DESIGN §8).

From the fn-wrapper base image (Dockerfile.base's): the function's requirements, the user's
instructions, the code and its run spec (so the image runs the serve and job doors with no
flags), and the base image's non-root user and CMD. Nothing secret is written: no ARG, no
credential, no task settings; every value that goes in is checked to stay on its own line.

On another base image (a plain Python image, as a KFP component's `base_image` often is), a
first stage installs fn-wrapper in its own venv at /opt/fn-wrapper from the context's wheels
(fn-wrapper's own, made from the running installation, and its runtime's pinned
dependencies), unless the base image has fn-wrapper already; the venv alone is copied into the
image, which then starts the serve door as Dockerfile.base's does.

Requirements are installed in a first stage from the context's wheels (no package index, the
runtime's pins as constraints) into their own folder, and only that folder is copied into the
image: the wheels never reach a layer, whatever the builder (docker and Kaniko keep a layer
per instruction). A `.pth` file appends the folder to `sys.path` after the base image's
packages, so no requirement shadows fn-wrapper's own dependencies; `pip check` then fails
the build where a requirement's dependency is missing.
"""

from __future__ import annotations

from typing import NamedTuple

from wrapper.errors import SpecError

APP = "/opt/function"
"""Where the function's code and run spec live in the image."""

USER = "1000:1000"
"""The base image's non-root user."""

WHEELS = "/tmp/fn-wrapper-wheels"

PACKAGES = f"{APP}/packages"
"""Where the function's requirements are installed (after the base image's on sys.path)."""

ADD_PACKAGES = (
    "python -c \"import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'fn-function.pth')"
    f".write_text('import site; site.addsitedir(\\'{PACKAGES}\\')\\n')\""
)

CHECK_PACKAGES = (
    "python -m pip check --disable-pip-version-check || { echo 'fn-wrapper build: a"
    " requirement misses a dependency (above): name it in the function requirements' >&2;"
    " exit 1; }"
)
"""The requirements are installed with --no-deps (their wheels are the resolved set): pip
check, seeing the base image's packages and the function's, fails the build clearly where
one is missing."""


class Recipe(NamedTuple):
    """What a function image is made of."""

    name: str
    base_image: str
    requirements: bool = False
    """The context has wheels/ to install (requirements.txt, constraints.txt, the wheels)."""
    instructions: tuple[str, ...] = ()
    """Shell commands run as root after the requirements (task.instructions)."""
    runtime: bool = False
    """The base image may lack fn-wrapper: the context has runtime/ (fn-wrapper's wheel, its
    pinned dependencies' wheels, constraints.txt) to install it on top where it does."""


VENV = "/opt/fn-wrapper"
"""Where fn-wrapper lives in an image (Dockerfile.base's place)."""

RUNTIME_WHEELS = "/tmp/fn-wrapper-runtime"

INSTALL_RUNTIME = (
    f"if command -v fn-wrapper >/dev/null; then mkdir -p {VENV}; else python3 -m venv {VENV}"
    f" && {VENV}/bin/python -m pip install --no-index --no-cache-dir --find-links"
    f" {RUNTIME_WHEELS} --constraint {RUNTIME_WHEELS}/constraints.txt fn-wrapper; fi"
)
"""fn-wrapper and its pinned dependencies, from the context's wheels, where the base image
lacks it (a base image that has it keeps its own: its /opt/fn-wrapper, if any, is copied as
it is)."""


def render(recipe: Recipe) -> str:
    """The Containerfile text."""
    _one_line("base_image", recipe.base_image)
    if not recipe.base_image or " " in recipe.base_image:
        raise SpecError(f"base_image {recipe.base_image!r} is not an image reference")
    lines = [
        f"# The image of function {_one_line('name', recipe.name)}, made by fn-wrapper build:",
        "# change the spec and build again rather than editing this file.",
    ]
    base = recipe.base_image
    if recipe.runtime:  # fn-wrapper in a venv of its own, unless the base image has it
        lines += [
            f"FROM {recipe.base_image} AS runtime",
            "USER root",
            f"COPY runtime/ {RUNTIME_WHEELS}/",
            f"RUN {INSTALL_RUNTIME}",
            f"ENV PATH={VENV}/bin:$PATH",
        ]
        base = "runtime"
    if recipe.requirements:
        lines += [
            f"FROM {base} AS requirements",
            "USER root",
            f"COPY wheels/ {WHEELS}/",
            f"RUN python -m pip install --no-index --no-cache-dir --no-deps --find-links {WHEELS}"
            f" --constraint {WHEELS}/constraints.txt --requirement {WHEELS}/requirements.txt"
            f" --target {PACKAGES}",
        ]
    lines += [f"FROM {recipe.base_image}", "USER root"]
    if recipe.runtime:
        lines += [
            f"COPY --from=runtime {VENV}/ {VENV}/",
            f"ENV PATH={VENV}/bin:$PATH PYTHONUNBUFFERED=1",
        ]
    lines += [
        "RUN command -v fn-wrapper >/dev/null || { echo 'the base image has no fn-wrapper:"
        " build one from Dockerfile.base' >&2; exit 1; }",
    ]
    if recipe.requirements:
        lines += [
            f"COPY --from=requirements {PACKAGES}/ {PACKAGES}/",
            f"RUN {ADD_PACKAGES}",
            f"RUN {CHECK_PACKAGES}",
        ]
    for number, command in enumerate(recipe.instructions):
        lines.append(f"RUN {_instruction(number, command)}")
    lines += [
        f"COPY function/ {APP}/",
        f"ENV FN_WRAPPER_SPEC={APP}/run.json",
        f"WORKDIR {APP}",
        f"USER {USER}",
    ]
    if recipe.runtime:
        lines.append('CMD ["fn-wrapper", "serve"]')  # as Dockerfile.base's
    return "\n".join(lines) + "\n"


def _one_line(field: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise SpecError(f"{field}: {value!r} must be one line (it goes into the Containerfile)")
    return value


def _instruction(number: int, command: str) -> str:
    field = f"task.instructions[{number}]"
    _one_line(field, command)
    if not command.strip() or command.rstrip().endswith("\\"):
        raise SpecError(f"{field}: {command!r} must be a whole shell command")
    return command.strip()

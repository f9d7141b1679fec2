"""The generated Containerfile and the runtime definitions (no builder needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wrapper.build.containerfile import APP, PACKAGES, USER, Recipe, render
from wrapper.build.runtimes import FOLDER, runtime, runtimes
from wrapper.errors import SpecError
from wrapper.spec.models import PythonVersion

ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[str]:
    """The Containerfile's instructions (comment lines dropped)."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def final_stage(text: str) -> list[str]:
    """The instructions of the last stage: what the image's layers are made of."""
    lines = instructions(text.replace("\\\n", " "))
    starts = [number for number, line in enumerate(lines) if line.startswith("FROM ")]
    return lines[starts[-1] :]


def test_every_supported_python_version_has_a_runtime() -> None:
    assert list(runtimes()) == [version.value for version in PythonVersion]
    assert FOLDER.resolve() == (ROOT / "runtimes").resolve()  # one source of truth
    for version, found in runtimes().items():
        dotted = found.dotted
        assert found.folder.name == f"python{dotted}"
        assert found.python_image == f"python:{dotted}-slim-bookworm"
        assert found.base_image.endswith(f"-python{dotted}")
        pins = found.requirements.read_text().splitlines()[1:]
        assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", pin) for pin in pins)
        assert any(pin.startswith("nuclio_sdk==") for pin in pins), version


@pytest.mark.parametrize("machine", ["x86_64", "amd64", "AMD64"])
def test_wheel_platforms_use_linuxs_machine_names_x86_64(machine: str) -> None:
    tags = runtime("PYTHON3_11").platforms(machine)
    assert tags[0] == "manylinux_2_36_x86_64" and tags[-1] == "manylinux1_x86_64"


@pytest.mark.parametrize("machine", ["aarch64", "arm64"])  # arm64: macOS's name
def test_wheel_platforms_use_linuxs_machine_names_aarch64(machine: str) -> None:
    tags = runtime("PYTHON3_11").platforms(machine)
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert not any("arm64" in tag for tag in tags)


def test_an_unknown_python_version_names_the_supported_ones() -> None:
    with pytest.raises(SpecError, match="PYTHON2_7' has no runtime: one of PYTHON3_9, PYTHON3_10"):
        runtime("PYTHON2_7")


@pytest.mark.parametrize("version", [v.value for v in PythonVersion])
def test_a_plain_function_image_per_version(version: str) -> None:
    base = runtime(version).base_image
    text = render(Recipe("hello", base))
    assert instructions(text) == [
        f"FROM {base}",
        "USER root",
        "RUN command -v fn-wrapper >/dev/null || { echo 'the base image has no fn-wrapper:"
        " build one from Dockerfile.base' >&2; exit 1; }",
        f"COPY function/ {APP}/",
        f"ENV FN_WRAPPER_SPEC={APP}/run.json",
        f"WORKDIR {APP}",
        f"USER {USER}",
    ]
    assert "ENTRYPOINT" not in text and "CMD" not in text  # the base image's CMD stays
    assert "HEALTHCHECK" not in text  # Kubernetes probes check health


def test_requirements_are_installed_in_a_first_stage_under_the_runtime_pins() -> None:
    text = render(
        Recipe("f", "registry.local/base:1", True, ("apt-get update", "  touch /marker  "))
    )
    lines = instructions(text)
    assert lines[:4] == [
        "FROM registry.local/base:1 AS requirements",
        "USER root",
        "COPY wheels/ /tmp/fn-wrapper-wheels/",
        "RUN python -m pip install --no-index --no-cache-dir --no-deps"
        " --find-links /tmp/fn-wrapper-wheels --constraint /tmp/fn-wrapper-wheels/constraints.txt"
        " --requirement /tmp/fn-wrapper-wheels/requirements.txt --target /opt/function/packages",
    ]
    image = final_stage(text)
    assert image[0] == "FROM registry.local/base:1"
    assert not any("wheels" in line for line in image)  # no layer ever holds them
    copied = image.index(f"COPY --from=requirements {PACKAGES}/ {PACKAGES}/")
    assert f"site.addsitedir(\\'{PACKAGES}\\')" in image[copied + 1]  # after the runtime's
    # installed --no-deps: pip check, seeing the base's packages and these, names a missing one
    assert image[copied + 2] == (
        "RUN python -m pip check --disable-pip-version-check || { echo 'fn-wrapper build: a"
        " requirement misses a dependency (above): name it in the function requirements' >&2;"
        " exit 1; }"
    )
    assert image[copied + 3 : copied + 5] == ["RUN apt-get update", "RUN touch /marker"]
    assert image[-1] == f"USER {USER}"  # root only while installing
    assert not any(line.startswith(("ARG", "ENV AWS", "ENV GIT", "HEALTHCHECK")) for line in lines)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            Recipe("f", "base\nRUN curl evil"),
            "base_image: 'base\\\\nRUN curl evil' must be one line",
        ),
        (Recipe("f", "base image"), "base_image 'base image' is not an image reference"),
        (Recipe("f", ""), "base_image '' is not an image reference"),
        (Recipe("f\nRUN x", "base"), "name: 'f\\\\nRUN x' must be one line"),
        (Recipe("f", "base", instructions=("ok", "echo\nFROM x")), r"task.instructions\[1\]"),
        (Recipe("f", "base", instructions=("echo a \\",)), "must be a whole shell command"),
        (Recipe("f", "base", instructions=("  ",)), "must be a whole shell command"),
    ],
)
def test_values_that_would_break_out_of_their_line_are_refused(
    recipe: Recipe, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        render(recipe)


def test_dockerfile_base_reads_the_runtime_and_keeps_nuclios_cmd_working() -> None:
    text = (ROOT / "Dockerfile.base").read_text()
    lines = instructions(text)
    assert lines[0] == "ARG PYTHON_IMAGE" and lines[1] == "FROM ${PYTHON_IMAGE} AS install"
    assert "COPY runtimes/${RUNTIME}/requirements.txt /tmp/fn-wrapper/constraints.txt" in lines
    assert "--no-index" in text and "/opt/nuclio" not in "\n".join(lines)
    image = final_stage(text)
    assert image[:2] == [
        "FROM ${PYTHON_IMAGE}",
        "COPY --from=install /opt/fn-wrapper /opt/fn-wrapper",
    ]
    assert not any("wheels" in line or "/tmp/fn-wrapper" in line for line in image)
    assert lines[-1] == 'CMD ["fn-wrapper", "serve"]'
    assert not any(line.startswith(("ENTRYPOINT", "HEALTHCHECK")) for line in lines)
    assert "USER 1000:1000" in lines and "useradd --uid 1000" in text
    for found in runtimes().values():  # each runtime's requirements exist where it copies them
        assert (ROOT / "runtimes" / found.folder.name / "requirements.txt").is_file()
        assert json.loads((found.folder / "runtime.json").read_text())["python_image"]

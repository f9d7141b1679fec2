"""Build contexts written from real sources, with wheels from a real wheelhouse (pip, no index)."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any, Optional

import pytest

from wrapper.build.containerfile import APP
from wrapper.build.context import BuildPlan, ContextSettings, allowed, write_context
from wrapper.build.wheels import WheelError
from wrapper.errors import SpecError
from wrapper.plan import FunctionPlan
from wrapper.sources.settings import SourceSettings

MAIN = "def handler(context, event):\n    return 'hi'\n"


def plan(
    requirements: tuple[str, ...] = (),
    base_image: Optional[str] = None,
    instructions: tuple[str, ...] = (),
    **function: Any,
) -> BuildPlan:
    fields = {"name": "hello", "python_version": "PYTHON3_11", "handler": "handler", **function}
    return BuildPlan(FunctionPlan(**fields), requirements, base_image, instructions)


def wheel(folder: Path, name: str, version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, made by hand."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "VALUE = 1\n")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> ContextSettings:
    return ContextSettings(SourceSettings(cache_dir=tmp_path / "cache"))


def test_a_one_file_function_becomes_code_a_run_spec_and_a_containerfile(
    tmp_path: Path, settings: ContextSettings
) -> None:
    (tmp_path / "main.py").write_text(MAIN)
    (tmp_path / "main.py").chmod(0o600)  # e.g. written under umask 077
    context = tmp_path / "context"
    recipe = write_context(
        plan(code_src=str(tmp_path / "main.py"), parameters={"n": 1}), context, settings
    )
    assert recipe.base_image == "fn-wrapper-base:0.1.0-python3.11" and not recipe.requirements
    assert (context / "function" / "code" / "main.py").read_text() == MAIN
    run = json.loads((context / "function" / "run.json").read_text())
    assert run == {
        "function": {
            "name": "hello", "python_version": "PYTHON3_11",
            "code_src": f"{APP}/code/main.py", "handler": "handler", "init_function": None,
        },
        "run": {"parameters": {"n": 1}, "init_parameters": {}},
    }  # fmt: skip
    assert (context / "Containerfile").read_text().startswith("# The image of function hello")
    assert sorted(p.name for p in context.iterdir()) == ["Containerfile", "function"]
    modes = {p.name: p.stat().st_mode & 0o777 for p in (context / "function").rglob("*")}
    assert modes == {"code": 0o755, "main.py": 0o644, "run.json": 0o644}  # the image's user reads


def test_requirements_come_as_wheels_from_a_wheelhouse_without_an_index(
    tmp_path: Path, settings: ContextSettings
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    wheel(house, "tinypkg")
    context = tmp_path / "context"
    source = base64.b64encode(MAIN.encode()).decode()
    recipe = write_context(
        plan(base64=source, requirements=("tinypkg==1.0",), instructions=("echo built",)),
        context,
        settings._replace(wheelhouses=(house,), use_index=False),
    )
    assert recipe.requirements and recipe.instructions == ("echo built",)
    assert sorted(p.name for p in (context / "wheels").iterdir()) == [
        "requirements.txt", "tinypkg-1.0-py3-none-any.whl",
    ]  # fmt: skip
    assert (context / "wheels" / "requirements.txt").read_text() == "tinypkg==1.0\n"
    assert "RUN echo built" in (context / "Containerfile").read_text()


def test_a_requirement_without_a_wheel_is_named(tmp_path: Path, settings: ContextSettings) -> None:
    with pytest.raises(WheelError) as caught:
        write_context(
            plan(code=MAIN, requirements=("nowhere-to-be-found==9",)),
            tmp_path / "context",
            settings._replace(use_index=False),
        )
    message = caught.value.message
    assert "no wheels for Python 3.11 on glibc 2.36" in message
    assert "nowhere-to-be-found" in message and "--wheelhouse" in message


def test_no_secret_value_enters_the_context(
    tmp_path: Path, settings: ContextSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "FN_WRAPPER_GIT_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, f"secret-{name}-value")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(MAIN)
    context = tmp_path / "context"
    write_context(plan(code_src=str(tmp_path / "app"), handler="main:handler"), context, settings)
    for path in context.rglob("*"):
        if path.is_file():
            assert b"secret-" not in path.read_bytes(), path
    assert json.loads((context / "function" / "run.json").read_text())["function"]["code_src"] == (
        f"{APP}/code"
    )


def test_the_allow_list_refuses_other_base_images_before_anything_is_written(
    tmp_path: Path, settings: ContextSettings
) -> None:
    allowed("registry.corp/python/base:1", ["registry.corp/*"])
    context = tmp_path / "context"
    with pytest.raises(SpecError, match=r"base_image 'docker\.io/evil:1' is not allowed here"):
        write_context(
            plan(code=MAIN, base_image="docker.io/evil:1"),
            context,
            settings._replace(allowed_base_images=("registry.corp/*",)),
        )
    assert not context.exists()


def test_a_context_folder_that_is_not_empty_is_refused(
    tmp_path: Path, settings: ContextSettings
) -> None:
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "keep.txt").write_text("mine")
    with pytest.raises(SpecError, match="not empty"):
        write_context(plan(code=MAIN), tmp_path / "context", settings)
    assert (tmp_path / "context" / "keep.txt").read_text() == "mine"

"""Build contexts written from real sources, with wheels from a real wheelhouse (pip, no index)."""

from __future__ import annotations

import base64
import functools
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest

from wrapper.build.containerfile import APP
from wrapper.build.context import BuildPlan, ContextSettings, allowed, write_context
from wrapper.build.runtimes import runtime
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
        "constraints.txt", "requirements.txt", "tinypkg-1.0-py3-none-any.whl",
    ]  # fmt: skip
    assert (context / "wheels" / "requirements.txt").read_text() == "tinypkg==1.0\n"
    pins = runtime("PYTHON3_11").requirements.read_text()
    assert (context / "wheels" / "constraints.txt").read_text() == pins
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


def test_a_requirement_cannot_replace_a_runtime_pin(
    tmp_path: Path, settings: ContextSettings
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    wheel(house, "PyYAML", "5.0")
    with pytest.raises(WheelError) as caught:
        write_context(
            plan(code=MAIN, requirements=("PyYAML==5.0",)),
            tmp_path / "context",
            settings._replace(wheelhouses=(house,), use_index=False),
        )
    message = caught.value.message
    assert "requirements: conflict with fn-wrapper's runtime pins" in message
    assert "The user requested PyYAML==5.0" in message and "pyyaml==6.0.4" in message


def test_the_runtimes_own_packages_stay_out_of_the_wheels(
    tmp_path: Path, settings: ContextSettings
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    wheel(house, "tinypkg")
    pinned = runtime("PYTHON3_11").requirements.read_text().split("PyYAML==")[1].split()[0]
    wheel(house, "PyYAML", pinned)  # already in the base image at that version
    context = tmp_path / "context"
    recipe = write_context(
        plan(code=MAIN, requirements=("tinypkg", "pyyaml")),
        context,
        settings._replace(wheelhouses=(house,), use_index=False),
    )
    assert recipe.requirements
    assert (context / "wheels" / "requirements.txt").read_text() == "tinypkg==1.0\n"
    assert not list((context / "wheels").glob("PyYAML*"))
    only_runtime = write_context(
        plan(code=MAIN, requirements=("pyyaml",)),
        tmp_path / "context2",
        settings._replace(wheelhouses=(house,), use_index=False),
    )
    assert not only_runtime.requirements and not (tmp_path / "context2" / "wheels").exists()


TOKEN = "tok-5ecret-9f2c"


def assert_no_token(context: Path) -> None:
    """No file of the context (Containerfile included) holds the token, nor does any name."""
    for path in context.rglob("*"):
        assert TOKEN not in str(path)
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.fixture
def wheel_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server of a folder of wheels (it ignores credentials; pip sends them)."""
    folder = tmp_path / "served"
    folder.mkdir()
    wheel(folder, "tinypkg")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_token_in_a_requirement_url_stays_on_the_host(
    tmp_path: Path, settings: ContextSettings, wheel_server: str
) -> None:
    url = f"http://user:{TOKEN}@{wheel_server}/tinypkg-1.0-py3-none-any.whl"
    context = tmp_path / "context"
    write_context(
        plan(code=MAIN, requirements=(f"tinypkg @ {url}",)),
        context,
        settings._replace(use_index=False),
    )
    assert (context / "wheels" / "tinypkg-1.0-py3-none-any.whl").is_file()
    assert (context / "wheels" / "requirements.txt").read_text() == "tinypkg==1.0\n"
    assert_no_token(context)


def test_a_local_folders_vcs_env_and_ignored_files_stay_out(
    tmp_path: Path, settings: ContextSettings
) -> None:
    app = tmp_path / "app"
    files = {
        "main.py": MAIN,
        "pkg/util.py": "X = 1\n",
        ".git/config": f'[remote "origin"]\n\turl = https://ci:{TOKEN}@git.corp/app.git\n',
        ".hg/hgrc": f"[paths]\ndefault = https://ci:{TOKEN}@hg.corp/app\n",
        "pkg/.svn/entries": TOKEN,
        ".env": f"API_TOKEN={TOKEN}\n",
        "pkg/.env.production": f"API_TOKEN={TOKEN}\n",
        "secrets/key.pem": TOKEN,
        "pkg/debug.log": TOKEN,
        "config/local.yaml": f"token: {TOKEN}\n",
        "config/shared.yaml": "level: info\n",
        ".dockerignore": "# not for the image\nsecrets/\n*.log\n/config/local.yaml\n",
    }
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    context = tmp_path / "context"
    write_context(plan(code_src=str(app), handler="main:handler"), context, settings)
    code = context / "function" / "code"
    assert sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()) == [
        ".dockerignore", "config/shared.yaml", "main.py", "pkg/util.py",
    ]  # fmt: skip
    assert_no_token(context)
    run = json.loads((context / "function" / "run.json").read_text())
    assert run["function"]["code_src"] == f"{APP}/code"


def test_a_one_file_source_takes_that_file_only(tmp_path: Path, settings: ContextSettings) -> None:
    (tmp_path / "main.py").write_text(MAIN)
    (tmp_path / ".env").write_text(f"API_TOKEN={TOKEN}\n")
    (tmp_path / "notes.txt").write_text(TOKEN)
    context = tmp_path / "context"
    write_context(plan(code_src=str(tmp_path / "main.py")), context, settings)
    assert [p.name for p in (context / "function" / "code").iterdir()] == ["main.py"]
    assert_no_token(context)


def test_an_ignore_file_exception_is_refused_by_line(
    tmp_path: Path, settings: ContextSettings
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(MAIN)
    (tmp_path / "app" / ".dockerignore").write_text("*.md\n!README.md\n")
    with pytest.raises(SpecError, match=r"\.dockerignore line 2: '!README\.md': exceptions"):
        write_context(
            plan(code_src=str(tmp_path / "app"), handler="main:handler"),
            tmp_path / "context",
            settings,
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

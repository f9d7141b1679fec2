"""Build contexts written from real sources, with wheels from a real wheelhouse (pip, no index)."""

from __future__ import annotations

import base64
import functools
import json
import os
import platform
import re
import tarfile
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


def wheel(
    folder: Path,
    name: str,
    version: str = "1.0",
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
) -> Path:
    """A minimal wheel (pure Python unless `tag` says otherwise), made by hand."""
    path = folder / f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "VALUE = 1\n")
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(
            f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n"
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
    secret = "sk-LIVE-0123456789"  # an init parameter may be an API key: no layer holds it
    document = plan(
        code_src=str(tmp_path / "main.py"), parameters={"n": 1}, init_parameters={"key": secret}
    )
    recipe = write_context(document, context, settings)
    assert recipe.base_image == "fn-wrapper-base:0.1.0-python3.11" and not recipe.requirements
    assert (context / "function" / "code" / "main.py").read_text() == MAIN
    run = json.loads((context / "function" / "run.json").read_text())
    assert run == {
        "function": {
            "name": "hello", "python_version": "PYTHON3_11",
            "code_src": f"{APP}/code/main.py", "handler": "handler", "init_function": None,
        },
    }  # fmt: skip
    for path in context.rglob("*"):  # no run value anywhere in the context
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
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


def test_dependencies_follow_the_images_python_not_the_hosts(
    tmp_path: Path, settings: ContextSettings
) -> None:
    """pip evaluates markers for the host's Python (3.11 here): for a 3.9 image they are
    evaluated again, and what pip left out is fetched (as tomli for autoflake on 3.9)."""
    house = tmp_path / "house"
    house.mkdir()
    requires = (
        'olddep; python_version < "3.11"',
        'newdep; python_version >= "3.11"',
        'fastdep; extra == "fast" and python_version < "3.10"',
    )
    wheel(house, "markpkg", requires=requires)
    for name in ("olddep", "newdep", "fastdep"):
        wheel(house, name)
    found = {}
    for version, requirement in [("PYTHON3_9", "markpkg[fast]"), ("PYTHON3_11", "markpkg[fast]"),
                                 ("PYTHON3_9", 'markpkg; python_version < "3.10"'),
                                 ("PYTHON3_10", 'markpkg; python_version < "3.10"')]:  # fmt: skip
        context = tmp_path / f"{version}-{len(found)}"
        recipe = write_context(
            plan(code=MAIN, python_version=version, requirements=(requirement,)),
            context,
            settings._replace(wheelhouses=(house,), use_index=False),
        )
        wheels = context / "wheels" / "requirements.txt"
        found[version, requirement] = wheels.read_text() if recipe.requirements else ""
    assert list(found.values()) == [
        "fastdep==1.0\nmarkpkg==1.0\nolddep==1.0\n",
        "markpkg==1.0\nnewdep==1.0\n",
        "markpkg==1.0\nolddep==1.0\n",
        "",  # the requirement's own marker is false for 3.10
    ]


def test_a_dependency_version_pip_chose_for_the_host_is_refused_by_name(
    tmp_path: Path, settings: ContextSettings
) -> None:
    """As botocore's `urllib3<1.27; python_version < "3.10"` against a 3.11 host's choice."""
    house = tmp_path / "house"
    house.mkdir()
    requires = ('pickdep<1; python_version < "3.10"', 'pickdep>=1; python_version >= "3.10"')
    wheel(house, "pickpkg", requires=requires)
    wheel(house, "pickdep", "0.5")
    wheel(house, "pickdep", "1.0")
    with pytest.raises(WheelError) as caught:
        write_context(
            plan(code=MAIN, python_version="PYTHON3_9", requirements=("pickpkg",)),
            tmp_path / "context",
            settings._replace(wheelhouses=(house,), use_index=False),
        )
    assert caught.value.message.startswith(
        "requirements: pickdep<1 is needed on Python 3.9 (by pickpkg), and the wheels have"
        " pickdep-1.0-py3-none-any.whl"
    )


def backend_project(folder: Path) -> Path:
    """A project with its build backend in its tree (nothing to fetch): pip can read its
    metadata offline, and would build it on the host."""
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (folder / "backend.py").write_text(
        "import pathlib, zipfile\n"
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        "    name = 'lpmod-1.0-py3-none-any.whl'\n"
        "    with zipfile.ZipFile(pathlib.Path(directory, name), 'w') as archive:\n"
        "        archive.writestr('lpmod-1.0.dist-info/METADATA',\n"
        "                         'Metadata-Version: 2.1\\nName: lpmod\\nVersion: 1.0\\n')\n"
        "        archive.writestr('lpmod-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\n')\n"
        "        archive.writestr('lpmod-1.0.dist-info/RECORD', '')\n"
        "    return name\n"
    )
    return folder


@pytest.mark.parametrize("kind", ["folder", "sdist"])
def test_a_requirement_that_is_not_a_wheel_is_named(
    tmp_path: Path, settings: ContextSettings, kind: str
) -> None:
    project = backend_project(tmp_path / "lpmod")
    if kind == "sdist":
        with tarfile.open(tmp_path / "lpmod-1.0.tar.gz", "w:gz") as archive:
            archive.add(project, arcname="lpmod-1.0")
        project = tmp_path / "lpmod-1.0.tar.gz"
    requirement = f"lpmod @ {project.as_uri()}"
    context = tmp_path / "context"
    with pytest.raises(WheelError) as caught:
        write_context(
            plan(code=MAIN, requirements=(requirement,)),
            context,
            settings._replace(use_index=False),
        )
    message = caught.value.message
    assert f"requirements: {requirement!r} has no wheel (" in message
    assert ("pip fetched lpmod-1.0.tar.gz" if kind == "sdist" else "a folder") in message
    assert "--wheelhouse" in message
    assert not context.exists()


def test_wheels_for_an_arm64_host_are_linuxs_aarch64_ones(
    tmp_path: Path, settings: ContextSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS names the machine arm64; a Linux image's wheels say aarch64."""
    house = tmp_path / "house"
    house.mkdir()
    wheel(house, "nativepkg", tag="cp311-cp311-manylinux_2_17_aarch64")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    context = tmp_path / "context"
    write_context(
        plan(code=MAIN, requirements=("nativepkg",)),
        context,
        settings._replace(wheelhouses=(house,), use_index=False),
    )
    assert (context / "wheels" / "requirements.txt").read_text() == "nativepkg==1.0\n"


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


def folder_context(
    app: Path, files: dict[str, str], context: Path, settings: ContextSettings
) -> list[str]:
    """Write `files` under the folder `app`, make the build context of a function from it;
    the files of the context's code, sorted."""
    for name, text in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)
    write_context(plan(code_src=str(app), handler="main:handler"), context, settings)
    code = context / "function" / "code"
    return sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())


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
    context = tmp_path / "context"
    assert folder_context(app, files, context, settings) == [
        ".dockerignore", "config/shared.yaml", "main.py", "pkg/util.py",
    ]  # fmt: skip
    assert_no_token(context)
    run = json.loads((context / "function" / "run.json").read_text())
    assert run["function"]["code_src"] == f"{APP}/code"


def test_a_one_file_source_in_a_subfolder_keeps_its_path(
    tmp_path: Path, settings: ContextSettings
) -> None:
    """DigitalHub's usual form: base64 code with `source: src/app.py`."""
    context = tmp_path / "context"
    source = base64.b64encode(MAIN.encode()).decode()
    write_context(plan(base64=source, code_src="src/app.py"), context, settings)
    run = json.loads((context / "function" / "run.json").read_text())
    assert run["function"]["code_src"] == f"{APP}/code/src/app.py"
    code = context / "function" / "code"
    assert [p.relative_to(code).as_posix() for p in code.rglob("*")] == ["src", "src/app.py"]
    assert (code / "src" / "app.py").read_text() == MAIN


def test_double_stars_match_zero_or_more_folders_and_envrc_stays_out(
    tmp_path: Path, settings: ContextSettings
) -> None:
    app = tmp_path / "app"
    files = {
        "main.py": MAIN,
        ".envrc": f"export API_TOKEN={TOKEN}\n",
        "config/local.yaml": f"token: {TOKEN}\n",
        "config/dev/eu/local.yaml": f"token: {TOKEN}\n",
        "config/shared.yaml": "level: info\n",
        "data/raw/a.csv": TOKEN,
        "data/keep.csv": "1\n",
        ".dockerignore": "config/**/local.yaml\ndata/*/*.csv\n",
    }
    context = tmp_path / "context"
    assert folder_context(app, files, context, settings) == [
        ".dockerignore", "config/shared.yaml", "data/keep.csv", "main.py",
    ]  # fmt: skip
    assert_no_token(context)


def test_links_inside_the_source_stay_links(tmp_path: Path, settings: ContextSettings) -> None:
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "main.py").write_text(MAIN)
    (app / "pkg" / "util.py").write_text("X = 1\n")
    (app / ".dockerignore").write_text("escape\n")
    (tmp_path / "passwd").write_text(TOKEN)
    (app / "escape").symlink_to(tmp_path / "passwd")  # left out by .dockerignore: no error
    (app / "alias.py").symlink_to(app / "pkg" / "util.py")  # absolute, but inside
    (app / "pkg" / "lib").symlink_to("..")
    context = tmp_path / "context"
    write_context(plan(code_src=str(app), handler="main:handler"), context, settings)
    code = context / "function" / "code"
    copied = [p for p in code.rglob("*") if p.is_symlink() or not p.is_dir()]
    assert sorted(p.relative_to(code).as_posix() for p in copied) == [
        ".dockerignore", "alias.py", "main.py", "pkg/lib", "pkg/util.py",
    ]  # fmt: skip
    assert os.readlink(code / "alias.py") == "pkg/util.py"  # relative: valid in the image
    assert os.readlink(code / "pkg" / "lib") == ".."
    assert (code / "alias.py").read_text() == "X = 1\n"
    assert_no_token(context)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/etc/passwd", "the link creds -> /etc/passwd points outside the source folder"),
        ("../../outside", "the link pkg/creds -> ../../outside points outside the source folder"),
        ("missing.py", "the link creds -> missing.py points nowhere"),
        ("creds", "the link creds -> creds points nowhere"),  # a loop
    ],
)
def test_links_out_of_the_source_or_nowhere_are_refused_by_name(
    tmp_path: Path, settings: ContextSettings, target: str, message: str
) -> None:
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "main.py").write_text(MAIN)
    (tmp_path / "outside").write_text(TOKEN)
    (app / ("pkg/creds" if target.startswith("..") else "creds")).symlink_to(target)
    context = tmp_path / "context"
    with pytest.raises(SpecError, match=re.escape(message)):
        write_context(plan(code_src=str(app), handler="main:handler"), context, settings)
    assert not context.exists()


def test_a_failed_build_leaves_no_context_and_the_folder_can_be_used_again(
    tmp_path: Path, settings: ContextSettings
) -> None:
    context = tmp_path / "out" / "context"
    with pytest.raises(WheelError):
        write_context(
            plan(code=MAIN, requirements=("nowhere-to-be-found==9",)),
            context,
            settings._replace(use_index=False),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no half-written folder
    context.mkdir(parents=True)  # an empty folder is used, as a new one is
    write_context(plan(code=MAIN), context, settings)
    assert (context / "Containerfile").is_file() and (context / "function" / "run.json").is_file()
    assert sorted(p.name for p in context.parent.iterdir()) == ["context"]


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
    with pytest.raises(SpecError, match=r"context/keep\.txt: not a folder"):
        write_context(plan(code=MAIN), tmp_path / "context" / "keep.txt", settings)

"""`fn-wrapper build` as a real subprocess writing contexts (no builder needed), and the
builders' command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wrapper.build.builders import commands
from wrapper.errors import ExitCode

MAIN = "def handler(context, event):\n    return 'hi'\n"


def build(*args: str, cwd: Path, allow_list: str = "") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "wrapper", "build", *args]
    env = {**os.environ, "FN_WRAPPER_ALLOWED_BASE_IMAGE": allow_list}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=120)


def test_a_context_from_a_positional_source_with_the_runs_inputs_recorded(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(MAIN)
    result = build(
        "hello.py", "--no-build-image", "--context-dir", "ctx", "--python-version", "PYTHON3_12",
        "--inputs", '{"table": "store://p/dataitem/table/t"}', "--parameters", '{"n": 2}',
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary == {
        "context": "ctx", "image": None, "base_image": "fn-wrapper-base:0.1.0-python3.12",
        "builder": "none", "pushed": False, "component": None,  # no --target-image: no component
        "inputs": {"table": "store://p/dataitem/table/t"}, "parameters": {"n": 2},
    }  # fmt: skip
    context = tmp_path / "ctx"
    assert (context / "function" / "code" / "hello.py").read_text() == MAIN
    run = json.loads((context / "function" / "run.json").read_text())
    assert "run" not in run  # recorded in the summary, never baked into the image
    assert "FROM fn-wrapper-base:0.1.0-python3.12" in (context / "Containerfile").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--builder", "none"), "--context-dir ctx: not empty"),
        (("--builder", "docker-that-is-not-here"), "invalid choice"),
        (("--no-build-image", "--python-version", "PYTHON2_7"), "python_version"),
    ],
)  # fmt: skip
def test_errors_are_named_before_anything_is_built(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "hello.py").write_text(MAIN)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "mine.txt").write_text("kept")
    result = build("hello.py", "--context-dir", "ctx", *args, cwd=tmp_path)
    assert result.returncode == ExitCode.BAD_INPUT
    assert message in result.stderr.decode()
    assert result.stdout == b""
    assert [p.name for p in (tmp_path / "ctx").iterdir()] == ["mine.txt"]


def test_a_context_dir_that_is_a_file_or_a_broken_link_in_the_source_is_named(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "hello.py").write_text(MAIN)
    (tmp_path / "hostname").write_text("host\n")

    def refused(context_dir: str, message: str) -> None:
        result = build("app", "--handler", "hello:handler", "--no-build-image",
                       "--context-dir", context_dir, cwd=tmp_path)  # fmt: skip
        assert result.returncode == ExitCode.BAD_INPUT
        assert message in result.stderr.decode()
        assert "Traceback" not in result.stderr.decode()

    refused("hostname", "--context-dir hostname: not a folder")
    (app / "data.csv").symlink_to("gone.csv")
    refused("ctx", "the link data.csv -> gone.csv points nowhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "hostname"]


@pytest.mark.parametrize(
    ("args", "allow_list", "message"),
    [
        ((), '["corp/*"]', "base_image 'evil/x:1' is not allowed here (allowed: corp/*;"
         " set by the operator in FN_WRAPPER_ALLOWED_BASE_IMAGE)"),
        (("--allowed-base-image", "*"), '["corp/*"]', "unrecognized arguments"),
        ((), "corp/*", "FN_WRAPPER_ALLOWED_BASE_IMAGE: 'corp/*' is not a JSON array"),
    ],
)  # fmt: skip
def test_only_the_operators_environment_sets_the_allow_list(
    tmp_path: Path, args: tuple[str, ...], allow_list: str, message: str
) -> None:
    (tmp_path / "hello.py").write_text(MAIN)
    base = ("hello.py", "--no-build-image", "--context-dir", "ctx", "--base-image", "evil/x:1")
    result = build(*base, *args, cwd=tmp_path, allow_list=allow_list)
    assert result.returncode == ExitCode.BAD_INPUT, result.stdout
    assert message in result.stderr.decode()
    assert not (tmp_path / "ctx").exists()
    assert build(*base, *args, cwd=tmp_path, allow_list='["evil/*"]').returncode == (
        ExitCode.BAD_INPUT if args else 0
    )


def test_the_builders_command_lines(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    assert commands("buildah", context, "reg/app:1", push=True) == [
        ["buildah", "build", "--file", f"{context}/Containerfile", "--tag", "reg/app:1",
         "--format", "oci", str(context)],
        ["buildah", "push", "reg/app:1"],
    ]  # fmt: skip
    assert commands("docker", context, "reg/app:1", push=False) == [
        ["docker", "build", "--file", f"{context}/Containerfile", "--tag", "reg/app:1",
         str(context)],
    ]  # fmt: skip
    assert commands("none", context, "reg/app:1", push=True) == []

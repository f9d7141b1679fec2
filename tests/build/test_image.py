"""Real images, end to end, with no registry: a Debian bookworm root made by debootstrap and
imported with buildah, Dockerfile.base built on it, a function image built by `fn-wrapper
build` with one requirement and its dependency (wheels the test makes: no index), then the
job and serve doors run inside it (`buildah run --isolation chroot`, the host's network).
Needs root, buildah and debootstrap (.ci/run installs them); skipped with the reason where
they are missing, except under CI, where that is a failure. Storage is the test's own (vfs,
under a temporary folder), removed at the end.

FN_WRAPPER_TEST_ROOTFS=/path/rootfs.tar reuses a root tarball instead of debootstrapping one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import descendants

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/py311-base:bookworm"
WRAPPER_BASE = "localhost/fn-wrapper-base:test-python3.11"
FUNCTION = "localhost/fn-hello:test"
MAIN = """
import fngreet

def handler(context, event):
    return f"hi from {fngreet.NAME}"
"""


def wheel(folder: Path, name: str, code: str, requires: tuple[str, ...] = ()) -> None:
    """A pure-Python wheel made by hand: the requirements need no package index."""
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": code,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(
            f"{info}/RECORD", "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
        )


MISSING = [
    *([] if hasattr(os, "geteuid") and os.geteuid() == 0 else ["root"]),
    *(tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None),
]
"""What image builds need and this machine lacks (.ci/run installs the tools, as root)."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING) and not os.environ.get("CI"),
        reason=f"image builds need {', '.join(MISSING)} here (under CI this fails instead)",
    ),
]


class Buildah:
    """buildah on the test's own storage (vfs) with chroot isolation."""

    def __init__(self, folder: Path) -> None:
        conf = folder / "storage.conf"
        conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{folder / "graph"}"\n'
            f'runroot = "{folder / "run"}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(conf),
            "BUILDAH_ISOLATION": "chroot",
        }

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            ["buildah", *args], env=self.env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"buildah {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout.strip()


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    if MISSING:
        pytest.fail(f"CI runs the image tests: it must have {', '.join(MISSING)} (.ci/run)")
    folder = tmp_path_factory.mktemp("images")
    tool = Buildah(folder)
    yield tool
    subprocess.run(["buildah", "rm", "--all"], env=tool.env, capture_output=True)
    subprocess.run(["buildah", "rmi", "--all", "--force"], env=tool.env, capture_output=True)


@pytest.fixture(scope="module")
def wrapper_base(buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Dockerfile.base built on a bookworm root imported without a registry."""
    folder = tmp_path_factory.mktemp("base")
    rootfs = Path(os.environ.get("FN_WRAPPER_TEST_ROOTFS", folder / "rootfs.tar"))
    if not rootfs.is_file():
        tree = folder / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", str(tree)],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        for left in [*tree.glob("var/cache/apt/archives/*.deb"), *tree.glob("var/lib/apt/lists/*")]:
            if left.is_file():  # as Python images ship: no package cache, no package lists
                left.unlink()
        subprocess.run(
            ["tar", "-C", str(tree), "--numeric-owner", "-cf", str(rootfs), "."], check=True
        )
    container = buildah("from", "scratch")
    buildah("add", container, str(rootfs), "/")
    buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LANG=C.UTF-8", container)  # fmt: skip
    buildah("commit", "--rm", container, BASE)
    context = folder / "context"
    subprocess.run(
        [sys.executable, str(ROOT / "runtimes" / "base_context.py"), "PYTHON3_11", str(context)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    buildah("build", "--pull=never", "-f", str(context / "Dockerfile.base"),
            "--build-arg", f"PYTHON_IMAGE={BASE}", "--build-arg", "RUNTIME=python3.11",
            "-t", WRAPPER_BASE, str(context))  # fmt: skip
    return WRAPPER_BASE


MAX_BASE_SIZE = 300_000_000
"""An upper bound on the base image (bookworm minbase with Python 3.11 is about 176 MB)."""

UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
"""buildah's human sizes (decimal units)."""


def test_the_base_image_keeps_nuclios_cmd_usable_runs_as_a_user_and_stays_small(
    buildah: Buildah, wrapper_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads(buildah("inspect", "--type", "image", wrapper_base))["OCIv1"]["config"]
    assert config["Cmd"] == ["fn-wrapper", "serve"] and not config.get("Entrypoint")
    assert config["User"] == "1000:1000"
    shown = buildah("images", "--format", "{{.Size}}", wrapper_base)
    python = buildah("images", "--format", "{{.Size}}", BASE)
    with capsys.disabled():  # in the CI log, not swallowed
        print(f"\nfn-wrapper base image: {shown} (its bookworm minbase Python 3.11: {python})")
    number, unit = shown.split()
    assert float(number) * UNITS[unit] < MAX_BASE_SIZE, (
        f"the base image is {shown} (its Python image {python}), over {MAX_BASE_SIZE / 1e6:.0f} MB"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_function_image_runs_the_job_and_serve_doors(
    buildah: Buildah, wrapper_base: str, tmp_path: Path
) -> None:
    (tmp_path / "main.py").write_text(MAIN)
    house = tmp_path / "house"  # a requirement with a dependency (pip check sees both)
    house.mkdir()
    wheel(house, "fngreet", "from fnwords import WORD as NAME\n", requires=("fnwords>=1",))
    wheel(house, "fnwords", "WORD = 'fngreet'\n")
    built = subprocess.run(
        [sys.executable, "-m", "wrapper", "build", "main.py", "--requirements", "fngreet",
         "--wheelhouse", str(house), "--no-index",
         "--base-image", wrapper_base, "--target-image", FUNCTION, "--builder", "buildah",
         "--context-dir", "ctx"],
        cwd=tmp_path, env=buildah.env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    assert json.loads(built.stdout.splitlines()[-1])["image"] == FUNCTION
    installed = (tmp_path / "ctx" / "wheels" / "requirements.txt").read_text()
    assert installed == "fngreet==1.0\nfnwords==1.0\n"
    for recipe in (ROOT / "Dockerfile.base", tmp_path / "ctx" / "Containerfile"):
        lines = recipe.read_text().splitlines()  # no HEALTHCHECK: OCI images would drop it
        assert not any(line.lstrip().upper().startswith("HEALTHCHECK") for line in lines), recipe
    container = buildah("from", "--pull=never", FUNCTION)

    job = buildah("run", container, "--", "fn-wrapper", "job", "--status-file", "/tmp/status.json")
    summary = json.loads(job.splitlines()[-1])
    assert summary["state"] == "COMPLETED" and summary["results"] == {"output_0": "hi from fngreet"}
    status = json.loads(buildah("run", container, "--", "cat", "/tmp/status.json"))
    assert status["state"] == "COMPLETED" and status["function"] == "main"

    port, admin = free_port(), free_port()
    served = subprocess.Popen(
        ["buildah", "run", container, "--", "fn-wrapper", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--admin-port", str(admin), "--workers", "1"],
        env=buildah.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        body = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    body = answer.read()
            except OSError:
                time.sleep(0.2)
        assert body == b"hi from fngreet"
        # buildah run passes no signal on: SIGTERM goes to the server (its third descendant)
        master = descendants(served.pid)[2]
        os.kill(master, signal.SIGTERM)
        assert served.wait(60) == 0
    finally:
        if served.poll() is None:
            os.killpg(served.pid, signal.SIGKILL)
            served.wait()
        assert served.stderr is not None
        served.stderr.close()


def test_the_api_builds_an_image_that_later_runs_name(
    buildah: Buildah, wrapper_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wrapper as dh

    for name in ("CONTAINERS_STORAGE_CONF", "BUILDAH_ISOLATION"):  # the build child's buildah
        monkeypatch.setenv(name, buildah.env[name])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text("def handler(who='image'):\n    return f'hi from {who}'\n")
    project = dh.get_or_create_project("images", store=str(tmp_path / "store"))
    greeter = project.new_function(
        name="greeter", python_version="PYTHON3_11", code_src="main.py", handler="handler",
        base_image=wrapper_base,
    )  # fmt: skip
    image = "localhost/fn-api-greeter:test"
    secret = "sk-LIVE-9f8e7d6c5b4a"  # an init parameter may be an API key
    build = greeter.run(
        "build", target_image=image, parameters={"who": "a build"}, init_parameters={"k": secret}
    )
    assert build.image == image and build.summary["parameters"] == {"who": "a build"}
    layers = tmp_path / "pushed"  # every layer, uncompressed: no run value in any file
    buildah("push", "--disable-compression", image, f"dir:{layers}")
    assert all(secret.encode() not in path.read_bytes() for path in layers.iterdir())
    assert greeter.spec["image"] == image == project.get_function("greeter").spec["image"]
    rendered = greeter.run("job", local_execution=False)  # a remote run names the image
    (manifest,) = rendered.files
    assert f"image: {image}" in manifest.read_text()
    container = buildah("from", "--pull=never", image)
    job = buildah("run", container, "--", "fn-wrapper", "job", "--parameters", '{"who": "k8s"}')
    summary = json.loads(job.splitlines()[-1])
    assert summary["state"] == "COMPLETED" and summary["results"] == {"output_0": "hi from k8s"}


def test_a_kfp_component_builds_on_a_python_image_without_fn_wrapper(
    buildah: Buildah, wrapper_base: str, tmp_path: Path
) -> None:
    """Seed 002's component (`kfp component build src/ --component-filepattern
    my_component.py`) built on a plain Python image (the bookworm one under the base image,
    standing in for the decorator's python:3.11, which cannot be pulled here): fn-wrapper
    goes on top from the context's wheels, kfp is not in the image (its stand-in serves the
    decorator), and the component's command runs the function."""
    shutil.copytree(ROOT / "tests" / "pipelines" / "seed" / "src", tmp_path / "src")
    house = tmp_path / "house"  # the decorator's packages_to_install; fn-wrapper's own
    house.mkdir()  # dependencies come from the package index
    wheel(house, "six", "VERSION = 1\n")
    image = "localhost/kfp-add:test"
    built = subprocess.run(
        [sys.executable, "-m", "wrapper", "build", "src", "--component-filepattern",
         "my_component.py", "--base-image", BASE, "--target-image", image,
         "--wheelhouse", str(house), "--builder", "buildah", "--context-dir", "ctx"],
        cwd=tmp_path, env=buildah.env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    summary = json.loads(built.stdout.splitlines()[-1])
    assert summary["image"] == image and summary["base_image"] == BASE
    container = buildah("from", "--pull=never", image)
    command = (
        "fn-wrapper job --kfp-parameter a Integer 2 --kfp-parameter b Integer 40"
        " --kfp-output output_0 Integer /tmp/out/sum >/dev/null && cat /tmp/out/sum && echo"
        " && { python -c 'import kfp' 2>/dev/null || echo no-kfp; }"
    )
    assert buildah("run", container, "--", "sh", "-c", command).split() == ["42", "no-kfp"]

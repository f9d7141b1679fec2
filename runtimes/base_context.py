"""Write the build context of Dockerfile.base for one runtime, with no package index needed
by the image build: this project's wheel and the wheels of the runtime's pins, fetched here.

    python runtimes/base_context.py PYTHON3_11 CONTEXT_DIR [--wheelhouse DIR]... [--no-index]

Then: buildah build -f CONTEXT_DIR/Dockerfile.base --build-arg PYTHON_IMAGE=<python_image>
--build-arg RUNTIME=python3.11 -t <base_image> CONTEXT_DIR (the last line printed says it).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from wrapper.build.runtimes import runtime
from wrapper.build.wheels import download_wheels

PROJECT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python_version")
    parser.add_argument("context", type=Path)
    parser.add_argument("--wheelhouse", type=Path, action="append", default=[])
    parser.add_argument("--no-index", action="store_true")
    options = parser.parse_args()
    found = runtime(options.python_version)
    context: Path = options.context
    if context.exists() and any(context.iterdir()):
        sys.exit(f"base_context: {context} is not empty")
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy(PROJECT / "Dockerfile.base", context / "Dockerfile.base")
    shutil.copytree(found.folder, context / "runtimes" / found.folder.name)
    with tempfile.TemporaryDirectory() as folder:  # pip builds in the tree: a copy of it
        source = Path(folder)
        for name in ("pyproject.toml", "README.md", "wrapper", "runtimes"):
            copy = shutil.copytree if (PROJECT / name).is_dir() else shutil.copy
            copy(PROJECT / name, source / name)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
             str(wheels.absolute()), str(source)],
            check=True,
        )  # fmt: skip
    download_wheels(found.requirements, wheels, found, options.wheelhouse, not options.no_index)
    print(
        f"buildah build -f {context}/Dockerfile.base --build-arg PYTHON_IMAGE={found.python_image}"
        f" --build-arg RUNTIME={found.folder.name} -t {found.base_image} {context}"
    )


if __name__ == "__main__":
    main()

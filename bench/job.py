"""The job door: what `fn-wrapper job` adds to a trivial call, and its memory while a handler
streams a large artifact.

    python bench/job.py [--rounds 15] [--size-mib 1024]

1. Wall time of `fn-wrapper job` (trivial handler, the local store) against `python -c`
   importing the same module, opening the same local store and calling the handler,
   alternated round by round; median of the paired differences (target: at most +150 ms).
   Whether boto3 or pandas was imported by the job is checked too (they must not be).
2. Peak RSS of a job whose handler downloads an artifact of --size-mib MiB through
   `download()` (target: under 100 MiB), read from the OS for that process (wait4).
The wrapper package is byte-compiled first, as `pip install` does (see bench/serve.py).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL = "def handler():\n    return 1\n"

STREAM = """
def handler(big):
    path = big.download("copy.bin", overwrite=True)
    return big.record.size
"""

FLOOR = (
    "import sys; sys.path.insert(0, '.'); import trivial; "
    "from wrapper.entities.store import open_store; open_store(sys.argv[1]); trivial.handler()"
)


def job_command(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "wrapper", "job", "--store", str(store), *args]


def timed(command: list[str], folder: Path) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    return (time.perf_counter() - began) * 1000


def overhead(folder: Path, store: Path, rounds: int) -> None:
    (folder / "trivial.py").write_text(TRIVIAL)
    ours = job_command(store, "--code-src", "trivial.py", "--handler", "trivial:handler")
    floor = [sys.executable, "-c", FLOOR, str(store)]
    timed(ours, folder), timed(floor, folder)  # warm the page cache and the store
    pairs = [(timed(ours, folder), timed(floor, folder)) for _ in range(rounds)]
    differences = [a - b for a, b in pairs]
    print(
        f"fn-wrapper job {statistics.median(a for a, _ in pairs):.0f} ms, python -c "
        f"{statistics.median(b for _, b in pairs):.0f} ms: +{statistics.median(differences):.0f}"
        f" ms (median of {rounds} pairs, {min(differences):+.0f} to {max(differences):+.0f};"
        " target <= +150 ms)"
    )
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", *ours[1:]], cwd=folder, capture_output=True
    )
    imported = {line.split("|")[-1].strip() for line in traced.stderr.decode().splitlines()}
    heavy = sorted(imported & {"boto3", "botocore", "pandas", "pyarrow", "uvicorn"})
    print(f"heavy modules imported by the job: {', '.join(heavy) or 'none'}")


def memory(folder: Path, store: Path, size_mib: int) -> None:
    from wrapper.entities.project import Project
    from wrapper.entities.store import open_store

    big = folder / "big.bin"
    with big.open("wb") as out:
        block = os.urandom(1024 * 1024)
        for _ in range(size_mib):
            out.write(block)
    key = Project("default", open_store(str(store))).log_artifact("big", source=big).key
    big.unlink()
    (folder / "stream.py").write_text(STREAM)
    command = job_command(
        store, "--code-src", "stream.py", "--handler", "stream:handler",
        "--inputs", json.dumps({"big": key}),
    )  # fmt: skip
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    copied = (folder / "copy.bin").stat().st_size
    assert os.waitstatus_to_exitcode(status) == 0 and copied == size_mib * 2**20
    print(
        f"streaming a {size_mib} MiB artifact through download(): peak RSS "
        f"{usage.ru_maxrss / 1024:.0f} MiB (target < 100 MiB), {seconds:.1f} s, "
        f"{size_mib / seconds:.0f} MiB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size-mib", type=int, default=1024)
    options = parser.parse_args()
    package = importlib.util.find_spec("wrapper")
    for location in (package and package.submodule_search_locations) or []:
        compileall.compile_dir(location, quiet=1)
    with tempfile.TemporaryDirectory(prefix="fn-wrapper-job-bench-") as name:
        folder = Path(name)
        store = folder / "store"
        overhead(folder, store, options.rounds)
        memory(folder, store, options.size_mib)


if __name__ == "__main__":
    main()

"""The Python API's own cost over the doors it drives.

    python bench/api.py [--rounds 15] [--serve-rounds 5]

1. A trivial job: `function.run(action="job")` in a warm caller (validating the document,
   starting the job door, reading the status back) against `fn-wrapper job` on the same run
   document and store, started by the same caller; alternated round by round, median of the
   paired differences (target: under +50 ms).
2. Serve, start to first answer: `function.run(action="serve")` then `invoke()` against
   `fn-wrapper serve` started by hand, polled on /ready, then one request; median of the
   paired differences.
The wrapper package is byte-compiled first, as `pip install` does (see bench/serve.py).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

CODE = "def handler():\n    return 1\n\n\ndef serve(event):\n    return 'ok'\n"


def median_pairs(name: str, ours: Callable[[], float], floor: Callable[[], float], rounds: int,
                 target: str) -> None:  # fmt: skip
    ours(), floor()  # warm the page cache, the store and the caller's imports
    pairs = [(ours(), floor()) for _ in range(rounds)]
    differences = [a - b for a, b in pairs]
    print(
        f"{name}: API {statistics.median(a for a, _ in pairs):.0f} ms, door alone "
        f"{statistics.median(b for _, b in pairs):.0f} ms: "
        f"{statistics.median(differences):+.0f} ms (median of {rounds} pairs, "
        f"{min(differences):+.0f} to {max(differences):+.0f}; target {target})"
    )


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read()  # type: ignore[no-any-return]
        except OSError:
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--serve-rounds", type=int, default=5)
    options = parser.parse_args()
    package = importlib.util.find_spec("wrapper")
    for location in (package and package.submodule_search_locations) or []:
        compileall.compile_dir(location, quiet=1)
    import wrapper as dh

    with tempfile.TemporaryDirectory(prefix="fn-wrapper-api-bench-") as name:
        folder = Path(name)
        (folder / "trivial.py").write_text(CODE)
        store = str(folder / "store")
        project = dh.get_or_create_project("bench", store=store)
        version = f"PYTHON{sys.version_info[0]}_{sys.version_info[1]}"
        source = {"python_version": version, "code_src": str(folder / "trivial.py")}
        job = project.new_function(name="trivial", handler="handler", **source)
        spec = folder / "run.json"
        spec.write_text(json.dumps({"function": dict(job.spec), "task": {"action": "job"}}))
        door = [sys.executable, "-m", "wrapper", "job", "--spec", str(spec), "--store", store]
        median_pairs(
            "trivial job",
            lambda: timed(lambda: job.run("job")),
            lambda: timed(lambda: subprocess.run(door, check=True, capture_output=True)),
            options.rounds,
            "< +50 ms",
        )
        api = project.new_function(name="api", handler="serve", **source)
        served = folder / "serve.json"
        served.write_text(json.dumps({"function": dict(api.spec), "task": {"action": "serve"}}))

        def through_api() -> float:
            began = time.perf_counter()
            with api.run("serve") as run:
                assert run.invoke().text == "ok"
                spent = (time.perf_counter() - began) * 1000
            return spent

        def door_alone() -> float:
            port, admin = free_port(), free_port()
            command = [
                sys.executable, "-m", "wrapper", "serve", "--spec", str(served), "--store", store,
                "--host", "127.0.0.1", "--port", str(port), "--admin-port", str(admin),
                "--workers", "1",
            ]  # fmt: skip
            began = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            get(f"http://127.0.0.1:{admin}/ready")
            assert get(f"http://127.0.0.1:{port}/") == b"ok"
            spent = (time.perf_counter() - began) * 1000
            process.terminate()
            process.wait()
            return spent

        median_pairs("serve, start to first answer", through_api, door_alone,
                     options.serve_rounds, "a few ms")  # fmt: skip


if __name__ == "__main__":
    main()

"""HTTP serving: `fn-wrapper serve` against a raw ASGI app on uvicorn (the ceiling) and
functions-framework's HTTP mode (the peer), hello world, one worker each, in the same run.

    python bench/serve.py [--duration 10] [--rounds 3] [--connections 32] [--spawns 5]

Throughput and p50/p99 latency: each server pinned to CPU 0, wrk pinned to CPU 1, 2 s of
warm-up, servers alternated round by round; medians (min-max) and ratios are printed.
Cold start: spawn to first 200, median of --spawns spawns per server, alternated
(--rounds 0 measures only that). The wrapper package is byte-compiled first, as pip does
when it installs it: an editable checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise
be compiled again at every start, which no installed peer pays.
Needs `wrk` and `taskset` (Debian: apt-get install wrk util-linux) and functions-framework
(pip install -e '.[bench]'); it installs nothing itself and says what is missing.
"""

from __future__ import annotations

import argparse
import compileall
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

FN_WRAPPER = "def handler(context, event):\n    return 'ok'\n"
RAW_ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""
FUNCTIONS_FRAMEWORK = "def hello(request):\n    return 'ok'\n"


def missing_tools() -> list[str]:
    missing = [
        f"{tool} (apt-get install {package})"
        for tool, package in (("wrk", "wrk"), ("taskset", "util-linux"))
        if shutil.which(tool) is None
    ]
    for module, hint in (
        ("functions_framework", "pip install -e '.[bench]'"),
        ("uvicorn", "pip install -e ."),
    ):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the Python package {module} ({hint})")
    return missing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def commands(folder: Path, port: int) -> dict[str, list[str]]:
    """How to start each server on `port` (one worker each)."""
    python = sys.executable
    return {
        "fn-wrapper": [
            python,
            "-m",
            "wrapper",
            "serve",
            "--code-src",
            str(folder / "fn.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--admin-port",
            str(free_port()),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        "raw-asgi": [
            python,
            "-m",
            "uvicorn",
            "raw:app",
            "--app-dir",
            str(folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "functions-framework": [
            python,
            "-m",
            "functions_framework",
            "--target",
            "hello",
            "--source",
            str(folder / "ff.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    }


def answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except OSError:
        return False


def start(command: list[str], port: int, pin: bool) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server; return it and the seconds from spawn to its first 200."""
    env = {**os.environ, "WORKERS": "1"}
    prefix = ["taskset", "-c", "0"] if pin else []
    began = time.perf_counter()
    process = subprocess.Popen(
        [*prefix, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not answers(port):
        if process.poll() is not None:
            raise SystemExit(f"server exited {process.returncode}: {' '.join(command)}")
        time.sleep(0.002)
    return process, time.perf_counter() - began


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(port: int, seconds: int, connections: int) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of a pinned wrk run."""
    output = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return rate, _latency(output, "50%"), _latency(output, "99%")


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):9.1f} ({min(values):.1f}-{max(values):.1f})"


def print_throughput(
    options: argparse.Namespace,
    names: list[str],
    rates: dict[str, list[float]],
    p50: dict[str, list[float]],
    p99: dict[str, list[float]],
) -> None:
    print(
        f"wrk -c{options.connections} -d{options.duration:g}s x {options.rounds} rounds "
        "(server CPU 0, wrk CPU 1)"
    )
    print(f"{'server':20} {'req/s median (min-max)':>26} {'p50 ms':>8} {'p99 ms':>8}")
    for name in names:
        print(
            f"{name:20} {summary(rates[name]):>26} {statistics.median(p50[name]):8.2f} "
            f"{statistics.median(p99[name]):8.2f}"
        )
    ours = statistics.median(rates["fn-wrapper"])
    ratio: Callable[[str], float] = lambda name: ours / statistics.median(rates[name])  # noqa: E731
    print(f"fn-wrapper / functions-framework: {ratio('functions-framework'):.2f}x (target >= 3)")
    print(f"fn-wrapper / raw ASGI ceiling:    {ratio('raw-asgi'):.2f}x (stretch >= 0.6)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--spawns", type=int, default=5)
    options = parser.parse_args()
    missing = missing_tools()
    if missing:
        raise SystemExit("bench/http.py needs: " + "; ".join(missing))

    package = importlib.util.find_spec("wrapper")
    for location in (package and package.submodule_search_locations) or []:
        compileall.compile_dir(location, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="fn-wrapper-bench-"))
    (folder / "fn.py").write_text(FN_WRAPPER)
    (folder / "raw.py").write_text(RAW_ASGI)
    (folder / "ff.py").write_text(FUNCTIONS_FRAMEWORK)
    names = list(commands(folder, 0))
    rates: dict[str, list[float]] = {name: [] for name in names}
    p50: dict[str, list[float]] = {name: [] for name in names}
    p99: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(options.rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            port = free_port()
            process, _ = start(commands(folder, port)[name], port, pin=True)
            try:
                wrk(port, 2, options.connections)  # warm-up
                rate, median, tail = wrk(port, options.duration, options.connections)
            finally:
                stop(process)
            rates[name].append(rate)
            p50[name].append(median)
            p99[name].append(tail)

    cold: dict[str, list[float]] = {name: [] for name in ("fn-wrapper", "functions-framework")}
    for _ in range(options.spawns):
        for name in cold:
            port = free_port()
            process, seconds = start(commands(folder, port)[name], port, pin=False)
            stop(process)
            cold[name].append(seconds * 1000)
    shutil.rmtree(folder, ignore_errors=True)

    print(f"python {sys.version.split()[0]}, 1 worker")
    if options.rounds:
        print_throughput(options, names, rates, p50, p99)
    for name, values in cold.items():
        print(
            f"cold start {name:20} {summary(values)} ms (spawn to first 200, {len(values)} spawns)"
        )
    cold_ratio = statistics.median(cold["fn-wrapper"]) / statistics.median(
        cold["functions-framework"]
    )
    print(f"cold start fn-wrapper / functions-framework: {cold_ratio:.2f}x (target <= 1)")


if __name__ == "__main__":
    main()

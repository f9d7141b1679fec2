"""The nuclio door: events through the processor's socket protocol, against a floor.

    python bench/nuclio.py [--events 20000] [--warmup 1000] [--rounds 3] [--spawns 7]
                           [--only '100 B'] [--instructions]

A fake processor (a real Unix socket) sends sequential events to (a) `fn-wrapper nuclio`
with a hello handler and (b) the floor: a minimal responder that reads each frame, unpacks
its msgpack and writes a fixed response, doing no other Python work per event. For 100 B and
64 KiB bodies, answered with a constant (plain) or with the body (echoed; the 64 KiB bodies
are hex text, and one more case echoes 64 KiB of random bytes, which go back base64):
events/s, p50/p99 round trip, and each process's own CPU time per event (utime + stime from
/proc over the whole timed run). Targets (issue 5): ours minus the floor at most a third of
Nuclio's own wrapper minus the floor, that is about 25 us per 100 B event; spawn to ready
(`s`) at most `python -c 'import nuclio_sdk, msgpack'` + 10 ms, measured in the same run. The
wrapper package is byte-compiled first, as `pip install` does (see bench/serve.py).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import msgpack

HANDLER = """
def handler(context, event):
    return event.body if event.path == "/echo" else "ok"
"""

FLOOR = """
import socket, sys, msgpack
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
stream = sock.makefile("rb", buffering=256 * 1024)
reply = b'm{"duration": 1e-06}\\nr{"body": "ok", "body_encoding": "text", ' \\
        b'"content_type": "text/plain", "status_code": 200, "headers": {}}\\n'
sock.sendall(b"s\\n")
while True:
    head = stream.read(4)
    if len(head) < 4:
        break
    msgpack.unpackb(stream.read(int.from_bytes(head, "big")), raw=False)
    sock.sendall(reply)
"""

ENTRY = Path(__file__).resolve().parent.parent / "wrapper" / "nuclio" / "entry.py"

NUCLIO_REFERENCE_US = 130.0 - 57.5
"""Nuclio's own wrapper minus the floor, µs of CPU per 100 B event (issue 5, this machine)."""


def event(body: bytes, path: str) -> bytes:
    return msgpack.packb(
        {
            "body": body,
            "content_type": "application/octet-stream",
            "content-type": "application/octet-stream",
            "trigger": {"kind": "http", "name": "bench"},
            "fields": {},
            "headers": {"Content-Type": "application/octet-stream", "X-Bench": "1"},
            "id": "0b0e7a4c-6a49-4b8e-9f0c-3c1f1d4a2b11",
            "method": "POST",
            "path": path,
            "url": path,
            "size": len(body),
            "timestamp": int(time.time()),
            "shard_id": 0,
            "num_shards": 0,
            "type": "",
            "type_version": "",
            "version": 0,
        },
        use_bin_type=True,
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker:
    """A spawned wrapper (ours or the floor) connected to our listening socket."""

    def __init__(self, command: list[str], folder: Path, socket_path: str) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_path)
        listener.listen(1)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *IMPORT_PATH])}
        self.began = time.perf_counter()
        self.process = subprocess.Popen(command, env=env, cwd=folder)
        listener.settimeout(30)
        self.sock = listener.accept()[0]
        listener.close()
        os.unlink(socket_path)
        self.lines = self.sock.makefile("rb")
        while self.lines.readline() != b"s\n":
            pass
        self.ready_after = time.perf_counter() - self.began

    def call(self, frame: bytes) -> None:
        self.sock.sendall(frame[:4])
        self.sock.sendall(frame[4:])
        while self.lines.readline()[:1] != b"r":
            pass

    def stop(self) -> None:
        self.lines.close()
        self.sock.close()
        self.process.wait(30)


def import_path() -> list[str]:
    """Where the wrapper and its dependencies are imported from, given to every process
    started here. They run with `python -S` (wheel-like) unless said otherwise: an editable
    install's import hook, loaded by `site` into every process, imports pathlib and more,
    which would hide what our start-up costs in an image where the package is installed
    from a wheel."""
    package = importlib.util.find_spec("wrapper")
    roots = [str(Path(p).parent) for p in (package and package.submodule_search_locations) or []]
    paths = sysconfig.get_paths()
    return [*roots, paths["purelib"], paths["platlib"]]


IMPORT_PATH = import_path()


def commands(folder: Path, socket_path: str, site: bool = False) -> dict[str, list[str]]:
    python, flags = sys.executable, [] if site else ["-S"]
    return {
        "fn-wrapper": [  # what a processor runs: the entry file, as NUCLIO_PYTHON_WRAPPER_PATH
            python,
            *flags,
            "-u",
            str(ENTRY),
            "--handler",
            "bench_handler:handler",
            "--event-socket-path",
            socket_path,
            "--decode-event-strings",
            "--log-level",
            "warning",
        ],
        "floor": [python, *flags, "-u", str(folder / "floor.py"), socket_path],
    }


def run(command: list[str], folder: Path, frame: bytes, events: int, warmup: int) -> dict:
    socket_path = str(folder / "event.sock")
    worker = Worker(command, folder, socket_path)
    try:
        for _ in range(warmup):
            worker.call(frame)
        times = []
        cpu = cpu_seconds(worker.process.pid)
        began = time.perf_counter()
        for _ in range(events):
            start = time.perf_counter()
            worker.call(frame)
            times.append(time.perf_counter() - start)
        wall = time.perf_counter() - began
        cpu = cpu_seconds(worker.process.pid) - cpu
    finally:
        worker.stop()
    times.sort()
    return {
        "rate": events / wall,
        "p50": times[len(times) // 2] * 1e6,
        "p99": times[int(len(times) * 0.99)] * 1e6,
        "cpu": cpu / events * 1e6,
    }


def instructions(command: list[str], folder: Path, frame: bytes) -> float:
    """User-space instructions per event under callgrind: (1,200 events - 200) / 1,000.

    CPU time moves a lot on a shared machine; instruction counts do not (the kernel's share,
    the socket system calls, is not counted: both servers make the same ones)."""
    counts = []
    for events in (200, 1200):
        out = folder / f"callgrind.{events}"
        socket_path = str(folder / "event.sock")
        worker = Worker(
            ["valgrind", "--tool=callgrind", "-q", f"--callgrind-out-file={out}", *command],
            folder,
            socket_path,
        )
        for _ in range(events):
            worker.call(frame)
        worker.stop()
        totals = re.search(rb"^(?:summary|totals): (\d+)", out.read_bytes(), re.M)
        assert totals, f"no instruction total in {out}"
        counts.append(int(totals.group(1)))
    return (counts[1] - counts[0]) / 1000


def spawn_to_ready(folder: Path, spawns: int, site: bool) -> tuple[list[float], list[float]]:
    """Spawn to `s` for fn-wrapper, and `python -c 'import nuclio_sdk, msgpack'`, alternated."""
    ours, imports = [], []
    for _ in range(spawns):
        socket_path = str(folder / "event.sock")
        worker = Worker(commands(folder, socket_path, site)["fn-wrapper"], folder, socket_path)
        ours.append(worker.ready_after * 1000)
        worker.stop()
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, *([] if site else ["-S"]), "-c", "import nuclio_sdk, msgpack"],
            check=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(IMPORT_PATH)},
        )
        imports.append((time.perf_counter() - began) * 1000)
    return ours, imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spawns", type=int, default=7)
    parser.add_argument("--only", help="run the cases whose name contains this, e.g. '100 B'")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    options = parser.parse_args()
    package = importlib.util.find_spec("wrapper")
    for location in (package and package.submodule_search_locations) or []:
        compileall.compile_dir(location, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="fn-wrapper-nuclio-bench-"))
    (folder / "bench_handler.py").write_text(HANDLER)
    (folder / "floor.py").write_text(FLOOR)
    cases = [
        ("100 B plain", event(b"x" * 100, "/plain")),
        ("100 B echoed", event(b"x" * 100, "/echo")),
        ("64 KiB plain", event(os.urandom(32 * 1024).hex().encode(), "/plain")),
        ("64 KiB echoed", event(os.urandom(32 * 1024).hex().encode(), "/echo")),
        ("64 KiB echoed binary", event(os.urandom(64 * 1024), "/echo")),  # answered base64
    ]
    cases = [case for case in cases if options.only is None or options.only in case[0]]
    print(
        f"python {sys.version.split()[0]}, {options.events} sequential events after "
        f"{options.warmup} warm-up, {options.rounds} rounds alternated; medians (min-max)"
    )
    print(
        f"{'case':20} {'server':10} {'events/s':>18} {'p50 us':>8} {'p99 us':>8} {'CPU us/ev':>16}"
    )
    for name, payload in cases:
        frame = struct.pack(">i", len(payload)) + payload
        results: dict[str, list[dict]] = {"fn-wrapper": [], "floor": []}
        for round_number in range(options.rounds):
            order = list(results) if round_number % 2 == 0 else list(results)[::-1]
            for server in order:
                command = commands(folder, str(folder / "event.sock"))[server]
                results[server].append(run(command, folder, frame, options.events, options.warmup))
        for server, runs in results.items():
            print(
                f"{name:20} {server:10} {spread([r['rate'] for r in runs]):>18} "
                f"{statistics.median(r['p50'] for r in runs):8.0f} "
                f"{statistics.median(r['p99'] for r in runs):8.0f} "
                f"{spread([r['cpu'] for r in runs]):>16}"
            )
        extra = [a["cpu"] - b["cpu"] for a, b in zip(results["fn-wrapper"], results["floor"])]
        target = NUCLIO_REFERENCE_US / 3
        note = f" (target <= {target:.0f} us)" if name.startswith("100 B") else ""
        print(f"{name:20} fn-wrapper - floor: {spread(extra)} us of CPU per event{note}")
        if options.instructions:
            counted = {
                server: instructions(command, folder, frame)
                for server, command in commands(folder, str(folder / "event.sock")).items()
            }
            print(
                f"{name:20} instructions per event (callgrind): floor {counted['floor']:,.0f}, "
                f"fn-wrapper {counted['fn-wrapper']:,.0f} "
                f"(+{counted['fn-wrapper'] - counted['floor']:,.0f})"
            )
    if not options.spawns:
        return
    for site, label in ((False, "python -S (wheel-like)"), (True, "python (site, this venv)")):
        ours, imports = spawn_to_ready(folder, options.spawns, site)
        margins = [a - b for a, b in zip(ours, imports)]  # each spawn with the one after it
        print(
            f"spawn to ready, {label}: fn-wrapper {spread(ours)} ms, "
            f"import nuclio_sdk, msgpack {spread(imports)} ms; difference, median of pairs "
            f"{statistics.median(margins):+.1f} ms, of minimums {min(ours) - min(imports):+.1f} "
            "ms (target <= +10)"
        )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    main()

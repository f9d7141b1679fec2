"""Dispatch overhead: one call through a PreparedHandler vs calling the handler directly.

    python bench/dispatch.py [--calls 200000] [--rounds 7]

Measures, in one process and alternating A/B rounds (GC off inside each timed loop):
  direct   handler(context, event)           the floor
  call     function.call(event)              prepared argument filling only
  respond  function.respond(event)           filling + result conversion to a Reply + request id
and prints µs per call (median, min-max over rounds) and the overhead over the floor.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wrapper.context import make_context
from wrapper.events import make_event
from wrapper.invocation import PreparedHandler
from wrapper.loader import LoadedCode


def handler(context: Any, event: Any) -> str:
    return "ok"


def per_call_us(loop: Callable[[int], None], calls: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        loop(calls)
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()

    context = make_context()
    function = PreparedHandler(LoadedCode(handler, "handler"), context)
    event = make_event(b"payload", method="POST", path="/")
    assert function.respond(event).body == b"ok"

    def direct(n: int) -> None:
        for _ in range(n):
            handler(context, event)

    def call(n: int) -> None:
        prepared = function.call
        for _ in range(n):
            prepared(event)

    def respond(n: int) -> None:
        prepared = function.respond
        for _ in range(n):
            prepared(event)

    loops = {"direct": direct, "call": call, "respond": respond}
    results: dict[str, list[float]] = {name: [] for name in loops}
    for loop in loops.values():
        loop(options.calls // 10)  # warm-up
    for _ in range(options.rounds):
        for name, loop in loops.items():
            results[name].append(per_call_us(loop, options.calls))

    floor = statistics.median(results["direct"])
    print(f"python {sys.version.split()[0]}, {options.calls} calls x {options.rounds} rounds")
    for name, values in results.items():
        median = statistics.median(values)
        line = f"{name:8} {median:6.3f} us/call (min {min(values):.3f}, max {max(values):.3f})"
        if name != "direct":
            overhead = statistics.median(v - d for v, d in zip(values, results["direct"]))
            line += f"  overhead {overhead:.3f} us  ratio {median / floor:.2f}x"
        print(line)


if __name__ == "__main__":
    main()

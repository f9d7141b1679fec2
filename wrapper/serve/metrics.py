"""Serve metrics: each worker counts into its own memory-mapped file of float64 slots (a few
hundred nanoseconds a request, no locks); the master adds the files up for `/metrics`."""

from __future__ import annotations

import bisect
import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
INIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# slot layout of one worker's file
READY, IN_FLIGHT, ERRORS, TIMEOUTS, LATENCY_SUM, INIT_SUM, INIT_COUNT = range(7)
LATENCY = 7  # len(LATENCY_BUCKETS) + 1 bucket counts (the last is +Inf)
INIT = LATENCY + len(LATENCY_BUCKETS) + 1  # len(INIT_BUCKETS) + 1 bucket counts
STATUS = INIT + len(INIT_BUCKETS) + 1  # one counter per status code 100..599
SLOTS = STATUS + 500


def slot_file(folder: Path, pid: int) -> Path:
    """The file worker `pid` counts into."""
    return folder / f"worker-{pid}.slots"


class WorkerMetrics:
    """One worker's counters, written in place in its slot file."""

    def __init__(self, folder: Path, pid: int) -> None:
        path = slot_file(folder, pid)
        with path.open("wb") as out:
            out.truncate(SLOTS * 8)
        with path.open("r+b") as stream:
            self._map = mmap.mmap(stream.fileno(), SLOTS * 8)
        self.slots = memoryview(self._map).cast("d")

    def ready(self, init_seconds: float) -> None:
        """Init finished in `init_seconds`: the worker counts as ready."""
        slots = self.slots
        slots[INIT_SUM] += init_seconds
        slots[INIT_COUNT] += 1
        slots[INIT + bisect.bisect_left(INIT_BUCKETS, init_seconds)] += 1
        slots[READY] = 1

    def started(self) -> None:
        self.slots[IN_FLIGHT] += 1

    def finished(self, status: int, seconds: float) -> None:
        """One request answered: its status and latency."""
        slots = self.slots
        slots[IN_FLIGHT] -= 1
        slots[STATUS + min(max(status, 100), 599) - 100] += 1
        slots[LATENCY_SUM] += seconds
        slots[LATENCY + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        if status == 504:
            slots[TIMEOUTS] += 1

    def handler_failed(self) -> None:
        self.slots[ERRORS] += 1


def read_slots(path: Path) -> list[float]:
    """A worker file's slots (all zeros for a file cut short)."""
    data = path.read_bytes()
    if len(data) != SLOTS * 8:
        return [0.0] * SLOTS
    return list(memoryview(data).cast("d"))


def worker_died(folder: Path, pid: int) -> None:
    """Keep a dead worker's counters, but it has no requests in flight and is not ready."""
    path = slot_file(folder, pid)
    if not path.exists():
        return
    with path.open("r+b") as stream, mmap.mmap(stream.fileno(), SLOTS * 8) as mapped:
        slots = memoryview(mapped).cast("d")
        slots[READY] = 0
        slots[IN_FLIGHT] = 0
        slots.release()


def ready_workers(folder: Path, pids: list[int]) -> int:
    """How many of the live workers `pids` finished init."""
    return sum(1 for pid in pids if is_ready(folder, pid))


def started_workers(folder: Path) -> int:
    """How many workers (live or not) have ever finished init."""
    return sum(1 for path in folder.glob("worker-*.slots") if read_slots(path)[INIT_COUNT] > 0)


def is_ready(folder: Path, pid: int) -> bool:
    """Whether worker `pid` finished init (and has not died since)."""
    try:
        return read_slots(slot_file(folder, pid))[READY] == 1
    except OSError:
        return False


class Collector:
    """A prometheus_client collector summing every worker file in `folder`."""

    def __init__(self, folder: Path, live: Any, start_failures: Any) -> None:
        self.folder = folder
        self.live = live  # callable returning the live worker pids
        self.start_failures = start_failures  # callable: workers that failed to start again

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        files = list(self.folder.glob("worker-*.slots"))
        totals = [0.0] * SLOTS
        for path in files:
            for index, value in enumerate(read_slots(path)):
                totals[index] += value
        live = self.live()
        codes = CounterMetricFamily(
            "fn_wrapper_requests", "Requests answered, by HTTP status.", labels=["code"]
        )
        for offset in range(500):
            if totals[STATUS + offset]:
                codes.add_metric([str(100 + offset)], totals[STATUS + offset])
        yield codes
        yield _histogram(
            HistogramMetricFamily,
            "fn_wrapper_request_duration_seconds",
            "Time from request to response.",
            LATENCY_BUCKETS,
            totals,
            LATENCY,
            LATENCY_SUM,
        )
        yield GaugeMetricFamily(
            "fn_wrapper_requests_in_flight", "Requests being handled now.", totals[IN_FLIGHT]
        )
        yield CounterMetricFamily(
            "fn_wrapper_handler_errors", "Handler calls that raised.", totals[ERRORS]
        )
        yield CounterMetricFamily(
            "fn_wrapper_request_timeouts", "Requests answered 504 (timeout).", totals[TIMEOUTS]
        )
        yield _histogram(
            HistogramMetricFamily,
            "fn_wrapper_init_duration_seconds",
            "Time each worker took to load the function and run init.",
            INIT_BUCKETS,
            totals,
            INIT,
            INIT_SUM,
        )
        yield GaugeMetricFamily(
            "fn_wrapper_workers_ready",
            "Live workers that finished init.",
            ready_workers(self.folder, live),
        )
        yield GaugeMetricFamily("fn_wrapper_workers", "Live workers.", len(live))
        yield CounterMetricFamily(
            "fn_wrapper_worker_start_failures",
            "Replacement workers whose init failed while others served (retried).",
            self.start_failures(),
        )


def _histogram(
    family: Any,
    name: str,
    text: str,
    bounds: tuple[float, ...],
    totals: list[float],
    start: int,
    sum_slot: int,
) -> Any:
    cumulative, buckets = 0.0, []
    for index, bound in enumerate((*bounds, float("inf"))):
        cumulative += totals[start + index]
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return family(name, text, buckets=buckets, sum_value=totals[sum_slot])

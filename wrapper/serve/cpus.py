"""How many CPUs this process may use: the default worker count of the serve door (DESIGN §6).

`os.cpu_count()` counts the machine's CPUs: under `taskset -c 0`, or in a pod limited to one
CPU on a 64-core node, it would start 64 workers (64 inits). This reads the CPU affinity, then
the cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`) of this
process's cgroup and its parents, and takes the smallest, rounded up, at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(root: Path = CGROUP_ROOT, proc: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: affinity and cgroup quota, whichever is fewer."""
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:  # macOS, Windows: no affinity to read
        count = os.cpu_count() or 1
    quota = cgroup_quota(root, proc)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_quota(root: Path, proc: Path) -> Optional[float]:
    """The tightest CPU quota (in CPUs) on this process's cgroups, None when unlimited."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one unified hierarchy
            quotas += [_v2(folder) for folder in _folders(root, path)]
        elif "cpu" in controllers.split(","):
            base = root / controllers
            if not base.is_dir():  # mounted as cpu,cpuacct with links named otherwise
                base = root / "cpu"
            quotas += [_v1(folder) for folder in _folders(base, path)]
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def _folders(base: Path, path: str) -> list[Path]:
    """The cgroup's folder and its parents up to the mount (a container sees `/` as its own)."""
    folder = base / path.lstrip("/")
    folders = [folder, *folder.parents]
    return [f for f in folders if f == base or base in f.parents]


def _v2(folder: Path) -> Optional[float]:
    text = _read(folder / "cpu.max")
    if text is None:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not quota.isdigit() or not period.strip().isdigit():
        return None
    return int(quota) / int(period)


def _v1(folder: Path) -> Optional[float]:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if quota is None or period is None or not period.isdigit():
        return None
    if not quota.isdigit():  # -1: unlimited
        return None
    return int(quota) / int(period)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None

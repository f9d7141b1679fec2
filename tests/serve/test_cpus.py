"""The serve door's default worker count: the CPUs this process may use (affinity, then the
cgroup CPU quota), not the machine's. Quotas cannot be set here: they are read from cgroup
trees the test writes, laid out as the kernel lays them out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serve.conftest import free_port
from wrapper.serve.cpus import cgroup_quota, usable_cpus


def tree(root: Path, files: dict[str, str], membership: str) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = root / "proc-self-cgroup"
    proc.write_text(membership)
    return proc


def test_a_v2_quota_rounds_up_and_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    proc = tree(
        tmp_path,
        {"cpu.max": "max 100000\n", "kubepods/cpu.max": "150000 100000\n",
         "kubepods/pod1/cpu.max": "max 100000\n"},
        "0::/kubepods/pod1\n",
    )  # fmt: skip
    assert cgroup_quota(tmp_path, proc) == 1.5
    assert usable_cpus(tmp_path, proc) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "kubepods" / "pod1" / "cpu.max").write_text("50000 100000\n")
    assert usable_cpus(tmp_path, proc) == 1  # half a CPU: one worker


def test_a_v1_quota_and_unlimited_groups(tmp_path: Path) -> None:
    proc = tree(
        tmp_path,
        {"cpu,cpuacct/pod/cpu.cfs_quota_us": "200000\n",
         "cpu,cpuacct/pod/cpu.cfs_period_us": "100000\n",
         "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
        "4:memory:/pod\n3:cpu,cpuacct:/pod\n",
    )  # fmt: skip
    assert cgroup_quota(tmp_path, proc) == 2.0
    unlimited = tree(tmp_path / "free", {"cpu.max": "max 100000\n"}, "0::/\n")
    assert cgroup_quota(tmp_path / "free", unlimited) is None
    assert cgroup_quota(tmp_path, tmp_path / "missing") is None


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_under_taskset_one_cpu_serve_starts_one_worker(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handler(event):\n    return 'ok'\n")
    port, admin = free_port(), free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FN_WRAPPER_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        served = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-m", "wrapper", "serve", "--code-src",
             str(tmp_path / "main.py"), "--host", "127.0.0.1", "--port", str(port),
             "--admin-port", str(admin), "--log-format", "json"],
            env=environ, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=5):
                    break
            except OSError:
                time.sleep(0.1)
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        booted = [line for line in lines if "Booting worker" in line["message"]]
        assert len(booted) == 1, log.read_text()
    finally:
        served.terminate()
        served.wait(30)

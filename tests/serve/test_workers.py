"""Serve workers are numbered 0..N-1 as Nuclio numbers them (a replacement takes the id of the
worker it replaces), on `context.worker_id` and on every log line; the log level holds for the
handler's `context.logger` (nuclio-sdk's logger) whatever its case."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from wrapper.serve.admin import IDLE_TIMEOUT, MAX_CONNECTIONS

WORKERS = """
import os

def init(context):
    context.logger.info("init of worker %s", context.worker_id)

def handler(context, event):
    if event.path == "/exit" and context.worker_id == "1":
        os._exit(7)
    context.logger.debug("a debug line")
    context.logger.info_with("an info line", path=event.path)
    return {"worker_id": context.worker_id, "pid": os.getpid()}
"""


def ids_seen(served, want: int) -> dict[int, str]:
    """pid → worker id, asking until `want` workers have answered."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while len(seen) < want and time.monotonic() < deadline:
        answer = json.loads(served.get("/")[2])
        seen[answer["pid"]] = answer["worker_id"]
    return seen


def test_two_workers_are_0_and_1_and_a_replacement_keeps_the_id(start_server) -> None:
    served = start_server(WORKERS, "--workers", "2", "--init-function", "init")
    seen = ids_seen(served, 2)
    assert sorted(seen.values()) == ["0", "1"]
    lines = served.log_lines()
    inits = [line for line in lines if line["message"].startswith("init of worker")]
    assert sorted(line["worker_id"] for line in inits) == ["0", "1"]
    assert all(line["message"] == f"init of worker {line['worker_id']}" for line in inits)
    gone = next(pid for pid, worker in seen.items() if worker == "1")
    for _ in range(50):  # until worker 1 takes one and dies without an answer
        try:
            served.request("GET", "/exit")
        except ConnectionError:
            break
    deadline = time.monotonic() + 30
    replaced: dict[int, str] = {}
    while time.monotonic() < deadline and set(replaced) <= set(seen):
        try:
            replaced.update(ids_seen(served, 2))
        except ConnectionError:
            time.sleep(0.1)
    new = {pid: worker for pid, worker in replaced.items() if pid not in seen}
    assert list(new.values()) == ["1"] and gone not in replaced


def test_the_log_level_holds_for_the_handlers_logger_in_any_case(start_server) -> None:
    quiet = start_server(WORKERS, "--workers", "1", "--log-level", "ERROR")
    assert json.loads(quiet.get("/x")[2])["worker_id"] == "0"
    messages = [line["message"] for line in quiet.log_lines()]
    assert "a debug line" not in messages and "an info line" not in messages
    loud = start_server(WORKERS, "--workers", "1", "--log-level", "Debug")
    loud.get("/y")
    lines = loud.log_lines()
    assert any(line["message"] == "a debug line" and line["worker_id"] == "0" for line in lines)
    info = next(line for line in lines if line["message"] == "an info line")
    assert info["with"] == {"path": "/y"} and info["request_id"]
    assert os.environ.get("FN_WRAPPER_LOG_LEVEL") is None  # the flags, not a twin, chose


def master_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_idle_admin_connections_are_capped_and_time_out(start_server) -> None:
    served = start_server(WORKERS, "--workers", "1")
    before = master_threads(served.process.pid)
    idle = [socket.create_connection(("127.0.0.1", served.admin_port)) for _ in range(200)]
    try:
        time.sleep(1)
        assert master_threads(served.process.pid) <= before + MAX_CONNECTIONS
        time.sleep(IDLE_TIMEOUT + 2)  # every idle connection has been dropped by now
        assert master_threads(served.process.pid) <= before + 1
        assert served.request("GET", "/live", admin=True)[0] == 200
    finally:
        for connection in idle:
            connection.close()


def test_a_normal_stop_logs_no_error(start_server) -> None:
    served = start_server(WORKERS, "--workers", "2")
    assert served.get("/")[0] == 200
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0
    text = served.stderr()
    assert "Error while closing socket" not in text
    errors = [line["message"] for line in served.log_lines() if line["level"] == "error"]
    assert [m for m in errors if "was sent SIGTERM" not in m] == []  # older gunicorns say so


FRAGILE = """
import os
from pathlib import Path

def init(context, folder):
    marker = Path(folder, f"worker-{context.worker_id}")
    if marker.exists():
        raise RuntimeError(f"{marker.name} was left behind")
    marker.write_text("ran")

def handler(context, event):
    if event.path == "/exit" and context.worker_id == "1":
        os._exit(7)
    return {"worker_id": context.worker_id, "pid": os.getpid()}
"""


def test_a_replacement_whose_init_fails_is_retried_while_the_others_serve(
    start_server, tmp_path: Path
) -> None:
    folder = tmp_path / "markers"
    folder.mkdir()
    served = start_server(
        FRAGILE, "--workers", "2", "--init-function", "init",
        "--init-parameters", json.dumps({"folder": str(folder)}),
    )  # fmt: skip
    for _ in range(50):  # until worker 1 takes one and dies
        try:
            served.request("GET", "/exit")
        except ConnectionError:
            break
    deadline = time.monotonic() + 30
    while "a replacement worker could not start" not in served.stderr():
        assert time.monotonic() < deadline, served.stderr()
        time.sleep(0.1)
    for _ in range(10):  # worker 0 goes on answering; the server is still ready
        assert json.loads(served.get("/")[2])["worker_id"] == "0"
    assert served.request("GET", "/ready", admin=True)[0] == 200
    metrics = served.request("GET", "/metrics", admin=True)[2].decode()
    assert "fn_wrapper_worker_start_failures_total 1.0" in metrics
    assert "worker-1 was left behind" in served.stderr()
    (folder / "worker-1").unlink()  # the next try (after the back-off) starts
    deadline = time.monotonic() + 30
    while len(set(ids_seen(served, 1).values()) | {"0"}) < 2:
        assert time.monotonic() < deadline, served.stderr()
        assert served.process.poll() is None
    assert served.process.poll() is None


def test_the_spec_verdict_lives_in_the_masters_private_folder(start_server) -> None:
    served = start_server(WORKERS, "--workers", "1")  # TMPDIR is the server's workdir
    (state,) = served.workdir.glob("fn-wrapper-serve-*")
    assert state.stat().st_mode & 0o777 == 0o700
    (verdict,) = state.glob("fn-wrapper-spec-*.json")
    assert verdict.stat().st_mode & 0o777 == 0o600
    assert not list(served.workdir.glob("fn-wrapper-spec-*"))  # none loose in the temp folder
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0
    assert not list(served.workdir.glob("fn-wrapper-*"))  # removed at exit

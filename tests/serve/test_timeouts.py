"""`--timeout` holds whatever the handler does: the caller gets a 504 near the deadline, and
the worker whose call overran is replaced before it serves again (DESIGN §6)."""

from __future__ import annotations

import json
import time

import pytest

HANDLERS = {
    "async-blocking": """
import os, time

async def handler(event):
    if event.path == "/pid":
        return str(os.getpid())
    time.sleep(3)  # blocks the worker's event loop
    return "late"
""",
    "sync-swallowing": """
import os, time

def handler(event):
    if event.path == "/pid":
        return str(os.getpid())
    try:
        time.sleep(3)
    except BaseException:  # swallows the timeout's interruption
        time.sleep(1)
    return "late"
""",
    "async-swallowing": """
import asyncio, os

async def handler(event):
    if event.path == "/pid":
        return str(os.getpid())
    try:
        await asyncio.sleep(3)
    except asyncio.CancelledError:  # swallows the cancellation
        await asyncio.sleep(1)
    return "late"
""",
}


@pytest.mark.parametrize("case", sorted(HANDLERS))
def test_a_call_past_the_timeout_is_504_at_the_deadline_and_the_worker_is_replaced(
    start_server, case: str
) -> None:
    served = start_server(HANDLERS[case], "--workers", "1", "--timeout", "1")
    first = served.get("/pid")[2]
    began = time.monotonic()
    status, headers, body = served.request("GET", "/slow", headers={"X-Request-Id": "slow-1"})
    took = time.monotonic() - began
    assert status == 504 and 0.9 < took < 2.0, (status, took, served.stderr())
    assert json.loads(body) == {"error": "handler timed out", "request_id": "slow-1"}
    assert headers["x-request-id"] == "slow-1"
    deadline = time.monotonic() + 30
    while True:  # the next request is answered, by a fresh worker
        try:
            status, _, pid = served.request("GET", "/pid", timeout=10)
        except OSError:
            status, pid = 0, b""
        if status == 200 and pid != first:
            break
        assert time.monotonic() < deadline, served.stderr()
        time.sleep(0.1)
    assert b"late" not in served.stderr().encode()

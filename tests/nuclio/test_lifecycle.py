"""Signals during an event, async callbacks and init, and batches, in both loops."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.nuclio.conftest import event


def both_loops(code: str) -> Any:
    """`code` as it is (a sync handler: the blocking loop) and with an async handler."""
    return pytest.mark.parametrize(
        "code", [code, code.replace("def handler", "async def handler")], ids=["sync", "async"]
    )


SLOW = """
import asyncio
import time

def handler(context, event):
    if event.path == "/slow":
        context.logger.info("slow handler started")
        time.sleep(0.5)  # SIGUSR2 arrives meanwhile
        return "slow done"
    return "handled"
"""
ASYNC_SLOW = SLOW.replace("def handler", "async def handler").replace(
    "time.sleep(0.5)", "await asyncio.sleep(0.5)"
)


@pytest.mark.parametrize("code", [SLOW, ASYNC_SLOW], ids=["sync", "async"])
def test_an_event_in_flight_when_sigusr2_arrives_is_still_answered(processor, code: str) -> None:
    fake = processor(code)
    fake.send(event(path="/slow", event_id="in-flight"))
    fake.wait_for_log("slow handler started")
    fake.signal(signal.SIGUSR2)
    answer = fake.receive()
    assert (answer.response["status_code"], answer.body) == (200, b"slow done")
    assert any("draining" in r["message"] for r in answer.logs)  # drained while it ran
    assert fake.call(event()).response["status_code"] == 503
    fake.signal(signal.SIGCONT)
    fake.wait_for_log("continuing")
    assert fake.call(event()).body == b"handled"


ASYNC_CALLBACKS = """
import asyncio

def init_context(context):
    async def drained():
        await asyncio.sleep(0.01)
        context.logger.info("async drain callback called")
    async def terminated():
        await asyncio.sleep(0.01)
        context.logger.info("async termination callback called")
    context.platform.set_drain_callback(drained)
    context.platform.set_termination_callback(terminated)

def handler(context, event):
    return "handled"
"""


@both_loops(ASYNC_CALLBACKS)
def test_async_drain_and_termination_callbacks_are_awaited(processor, code: str) -> None:
    fake = processor(code)
    fake.signal(signal.SIGUSR2)
    fake.wait_for_log("async drain callback called")
    assert fake.call(event()).response["status_code"] == 503
    fake.signal(signal.SIGCONT)
    fake.wait_for_log("continuing")
    assert fake.call(event()).body == b"handled"
    fake.signal(signal.SIGUSR1)
    fake.wait_for_log("async termination callback called")
    assert fake.call(event()).response["status_code"] == 503
    fake.hang_up()
    assert fake.process.wait(30) == 0


ASYNC_INIT_FAILS = """
async def init_context(context):
    raise RuntimeError("no cache")

async def handler(context, event):
    return "never"
"""


def test_an_async_init_failure_exits_1_before_ready(processor) -> None:
    """Exit 1, as Nuclio's wrapper exits for any failure (NUCLIO_PROTOCOL §7)."""
    fake = processor(ASYNC_INIT_FAILS, ready=False)
    record = fake.wait_for_log("no cache")
    assert record["level"] == "error"
    assert "RuntimeError: no cache" in record["with"]["traceback"]
    assert fake.process.wait(30) == 1
    assert fake.lines.readline() == b""  # never sent `s`


RAISING_BATCH = """
def handler(context, events):
    raise RuntimeError("batch failed")
"""


@both_loops(RAISING_BATCH)
def test_a_batch_whose_handler_raises_answers_500_for_each_event(processor, code: str) -> None:
    fake = processor(code)
    answer = fake.call([event(event_id="1"), event(event_id="2")])
    assert [(r["event_id"], r["status_code"]) for r in answer.response] == [("1", 500), ("2", 500)]
    assert answer.response[1]["content_type"] == "text/plain"
    assert answer.response[1]["body"] == (
        "Exception caught in handler (request id 1): the exception and its traceback are in "
        "the function's log"
    )  # the request id of a batch is its first event's
    assert answer.duration is None  # no `m` after a handler that raised
    [record] = [r for r in answer.logs if r["level"] == "error"]
    assert "RuntimeError: batch failed" in record["message"]
    assert fake.call([event(event_id="3")]).response[0]["status_code"] == 500  # still serving

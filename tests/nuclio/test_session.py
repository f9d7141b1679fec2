"""The session's own machinery, in process: what real sockets cannot reach deterministically."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from wrapper.nuclio.aloop import _own_cancellation
from wrapper.nuclio.logs import ProcessorLogHandler
from wrapper.nuclio.session import Session, SessionSettings


@pytest.fixture
def session() -> Iterator[tuple[Session, socket.socket]]:
    """A Session whose event socket is one end of a socketpair, its log lines sent through it
    (as `connect` arranges), and the other end to read them."""
    ours, theirs = socket.socketpair()
    session = Session(SessionSettings(event_socket="unused"))
    session._sendall = ours.sendall
    session.function = type("F", (), {"context": type("C", (), {"platform": None})()})()  # type: ignore[assignment]
    logger = logging.getLogger("wrapper.nuclio")
    handler = ProcessorLogHandler(session.send)
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        yield session, theirs
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        ours.close()
        theirs.close()


def test_a_signal_while_the_line_lock_is_held_is_deferred_not_deadlocked(
    session: tuple[Session, socket.socket],
) -> None:
    """A signal can land after `_send_blocking` took the lock and before it marks the line
    as being written: drain logs, and logging there would wait on the lock forever."""
    wrapper, processor = session
    done = threading.Event()

    def signal_arrives() -> None:  # what the handler of SIGUSR2 runs
        wrapper._from_signal(wrapper.drain)
        done.set()

    with wrapper._lock:  # held, and no line marked as being written
        caller = threading.Thread(target=signal_arrives, daemon=True)
        caller.start()
        returned = done.wait(2)
    assert returned, "the signal's action waited on the line lock"
    assert wrapper.state is None  # deferred: not run yet
    wrapper.send(b"r{}\n")  # the next line out runs it once it is whole
    assert wrapper.state == "draining"
    processor.settimeout(5)
    lines = processor.makefile("rb")
    assert lines.readline() == b"r{}\n"
    record = json.loads(lines.readline()[1:])
    assert "draining" in record["message"]
    caller.join(5)


def test_a_signal_with_the_lock_free_runs_at_once(session: tuple[Session, socket.socket]) -> None:
    wrapper, processor = session
    wrapper._from_signal(wrapper.drain)
    assert wrapper.state == "draining"
    processor.settimeout(5)
    assert b"draining" in processor.makefile("rb").readline()


def test_only_a_cancellation_of_the_serving_task_is_its_own() -> None:
    """The async loop answers a handler's CancelledError 500, but lets its own task's
    cancellation (asyncio.run's on SIGINT, from Python 3.11) end it."""

    async def serving() -> tuple[bool, bool]:
        try:
            raise asyncio.CancelledError()  # what a handler may raise
        except asyncio.CancelledError as exc:
            raised = _own_cancellation(exc)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            return raised, _own_cancellation(exc)
        raise AssertionError("not cancelled")

    raised, cancelled = asyncio.run(serving())
    assert not raised
    assert cancelled is (sys.version_info >= (3, 11))
    assert not _own_cancellation(KeyboardInterrupt())

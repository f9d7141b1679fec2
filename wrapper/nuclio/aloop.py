"""The async side of a session: one asyncio loop for the life of the process.

Frames are read with asyncio streams, so the loop runs the handler's own tasks while it
waits for the next event; lines go out through the stream's transport, in order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Callable, Optional

from wrapper.errors import InitError
from wrapper.invocation import PreparedHandler
from wrapper.nuclio import codec
from wrapper.nuclio.framing import ProcessorClosed, ProcessorGone, frame_length

if TYPE_CHECKING:
    from wrapper.nuclio.session import Session

_callbacks: set[asyncio.Task[None]] = set()
"""Signal callbacks running as tasks (held here so none is collected before it ends)."""


async def serve_async(session: Session, function: PreparedHandler) -> int:
    """Init (awaited), announce readiness, then answer events one at a time."""
    from wrapper.nuclio.session import HANDLER_ERRORS, log, malformed

    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(sock=session.event_sock)
    loop_thread = threading.get_ident()

    def send(data: bytes) -> None:
        if threading.get_ident() == loop_thread:
            writer.write(data)
        else:
            loop.call_soon_threadsafe(writer.write, data)

    session.use_sender(send)
    try:
        await function.astart()
    except InitError as exc:
        log.error("%s", exc.message, extra={"with": {"traceback": exc.details or ""}})
        await writer.drain()
        raise
    for number, action in session.signal_actions().items():
        loop.add_signal_handler(number, _finish, loop, action)
    session.announce()
    decode = session.settings.decode_strings
    perf_counter = time.perf_counter_ns
    while True:
        try:
            payload = await _read_frame(reader)
        except ProcessorGone as exc:
            return session.gone(exc)
        if session.state is not None:
            send(session.refused(payload))
            continue
        try:
            events, batch = codec.decode_events(payload, decode)
        except codec.MalformedEvent as exc:
            send(malformed(exc))
            continue
        started = perf_counter()
        if batch:
            try:
                results = function.call(events)
                if function.is_async or isinstance(results, Awaitable):
                    results = await results
            except HANDLER_ERRORS as exc:
                if _own_cancellation(exc):
                    raise
                send(session.failed_batch(events, exc))
            else:
                answer = session.answer_batch(events, results)
                send(codec.reply_lines(answer, perf_counter() - started))
        else:
            try:
                reply = await function.arespond_whole(events)
            except HANDLER_ERRORS as exc:  # arespond answers Exception and SystemExit itself
                if _own_cancellation(exc):
                    raise
                reply = function.fail(exc, codec.event_id(events))
            send(codec.event_lines(reply, perf_counter() - started))
        await writer.drain()


def _own_cancellation(exc: BaseException) -> bool:
    """Whether `exc` is this serving task being cancelled (asyncio.run does so on SIGINT from
    Python 3.11, which counts the requests), not a CancelledError of the handler's own, such
    as one it raised or got from awaiting a task it cancelled: that one is a handler error.
    Before 3.11 nothing but the handler's code cancels this task."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is not None and cancelling() > 0


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await reader.readexactly(4)
        return await reader.readexactly(frame_length(head))
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ProcessorClosed("the processor closed the event socket") from None
        raise ProcessorGone(
            "the processor closed the event socket in the middle of a frame"
        ) from None


def _finish(loop: asyncio.AbstractEventLoop, action: Callable[[], Optional[Any]]) -> None:
    """Run a signal's action; an awaitable it returns runs as a task of the loop."""
    result = action()
    if result is not None and hasattr(result, "__await__"):
        from wrapper.nuclio.session import log

        async def awaited() -> None:
            try:
                await result
            except Exception:
                log.exception("a signal callback raised")

        task = loop.create_task(awaited())
        _callbacks.add(task)
        task.add_done_callback(_callbacks.discard)

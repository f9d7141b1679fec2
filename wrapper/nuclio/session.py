"""One wrapper process's conversation with the processor: connect, init, announce, answer.

A sync handler is served by a blocking loop (no event-loop cost per event); an async one by
an asyncio loop that lives as long as the process, so tasks it spawns run between events
(DESIGN §7). Signals follow the processor (NUCLIO_PROTOCOL.md §9): SIGUSR2 drains, SIGCONT
continues, SIGUSR1 terminates; events that arrive while draining or terminating are answered
503 (with the stream triggers' no-ack header) rather than left without a reply.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import threading
import time
from typing import Any, Callable, Optional

from wrapper.errors import InitError, WrapperError
from wrapper.invocation import PreparedHandler
from wrapper.nuclio import codec
from wrapper.nuclio.framing import (
    FrameReader,
    LineWriter,
    ProcessorClosed,
    ProcessorGone,
    connect,
)
from wrapper.nuclio.logs import ProcessorLogHandler
from wrapper.reply import NUCLIO, NUCLIO_TEXT, Reply, collect
from wrapper.secrets import Redaction

log = logging.getLogger("wrapper.nuclio")

HANDLER_ERRORS = (BaseException,)
"""What a handler raises that is answered 500 and the loop goes on: anything, as Nuclio's
wrapper answers any BaseException (SystemExit, KeyboardInterrupt, asyncio.CancelledError). The
async loop re-raises the one that is not the handler's: a cancellation of its own task."""

READY_LINE = b"s\n"
INITIALIZED = {"kind": "wrapperInitialized", "attributes": {"ready": "true"}}


class SessionSettings:
    """What the processor's command line says about this worker."""

    def __init__(
        self,
        event_socket: str,
        control_socket: Optional[str] = None,
        decode_strings: bool = False,
        connect_attempts: int = 60,
    ) -> None:
        self.event_socket = event_socket
        self.control_socket = control_socket
        self.decode_strings = decode_strings
        self.connect_attempts = connect_attempts


class Session:
    """The sockets, the drain state and the loop of one wrapper process."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.state: Optional[str] = None  # None serving, else "draining" / "terminating"
        self.function: Optional[PreparedHandler] = None
        self._lock = threading.Lock()
        self._sendall: Callable[[bytes], None] = _not_connected
        self._control: Optional[LineWriter] = None
        self._deferred: list[Callable[[], None]] = []
        self._terminated = False
        self._send: Callable[[bytes], None] = self._send_blocking

    # --- to the processor ---------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write lines to the event socket (from any thread)."""
        self._send(data)

    def use_sender(self, send: Callable[[bytes], None]) -> None:
        """Send through `send` from now on (the async loop's stream writer)."""
        self._send = send

    def _send_blocking(self, data: bytes) -> None:
        with self._lock:
            self._sendall(data)
        if self._deferred:
            self._run_deferred()

    def _run_deferred(self) -> None:
        """Run the signal actions that waited for the line lock (from whichever thread
        releases it first: `pop` hands each to one thread only)."""
        while self._deferred:
            try:
                action = self._deferred.pop(0)
            except IndexError:  # another thread took the last one
                return
            action()

    async def on_control(self, message: dict[str, Any]) -> None:
        """The platform's control messages (explicit acks) as JSON lines on the control socket."""
        if self._control is not None:
            self._control.send(json.dumps(message).encode() + b"\n")

    # --- start-up -----------------------------------------------------------------------

    def connect(self) -> None:
        """Connect the event socket, then the control socket; processor-bound logs from now."""
        attempts = self.settings.connect_attempts
        event_path = self.settings.event_socket.split(",")[0].strip()
        self.event_sock = connect(event_path, attempts)
        self._sendall = self.event_sock.sendall
        if self.settings.control_socket:
            self._control = LineWriter(connect(self.settings.control_socket, attempts))
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(ProcessorLogHandler(self.send, Redaction.from_environment()))

    def run(self, function: PreparedHandler) -> int:
        """Init, announce readiness, answer events until the processor goes (exit code 1)."""
        self.function = function
        function.conversion = NUCLIO
        try:
            if function.needs_loop:
                import asyncio

                from wrapper.nuclio.aloop import serve_async

                return asyncio.run(serve_async(self, function))
            return self._run_blocking(function)
        except ConnectionError as exc:  # reset or broken: the processor closed, lines unread
            reason = exc.strerror or type(exc).__name__
            return self.gone(ProcessorGone(f"the processor's event socket failed: {reason}"))

    def _run_blocking(self, function: PreparedHandler) -> int:
        try:
            function.start()
        except InitError as exc:
            log.error("%s", exc.message, extra={"with": {"traceback": exc.details or ""}})
            raise
        for number, action in self.signal_actions().items():
            signal.signal(number, lambda *_, act=action: self._from_signal(act))
        self.announce()
        return self._serve_blocking(function)

    def announce(self) -> None:
        """Tell the processor this worker is ready. What start-up made stays for the life of
        the process, so it moves out of the collector's sight (`gc.freeze`): the periodic
        collections between events then walk only what events create."""
        gc.freeze()
        self.send(READY_LINE)
        if self._control is not None:
            self._control.send(json.dumps(INITIALIZED).encode() + b"\n")

    # --- signals ------------------------------------------------------------------------

    def signal_actions(self) -> dict[int, Callable[[], Optional[Any]]]:
        return {
            signal.SIGUSR2: self.drain,
            signal.SIGCONT: self.resume,
            signal.SIGUSR1: self.terminate,
        }

    def _from_signal(self, action: Callable[[], Optional[Any]]) -> None:
        """Run a signal's action now, or once the line lock is free.

        The action logs, and a log record is a line sent under the (non-reentrant) lock. A
        signal handler runs in the main thread between any two bytecodes, so it can land
        while the main thread holds the lock, anywhere from just after `acquire` to just
        before `release`: sending from there would wait on itself forever. So while the lock
        is held, by anyone, the action waits in `_deferred` and the holder runs it once its
        line is whole. Should another thread have let go of the lock between the check and
        the append, no holder is left to run it: it is run here.
        """
        if not self._lock.locked():
            _run_sync(action())
            return
        self._deferred.append(lambda: _run_sync(action()))
        if not self._lock.locked():
            self._run_deferred()

    def drain(self) -> Optional[Any]:
        """Stop handling events (they get 503) and call the drain callback."""
        log.info("draining: events are answered 503 until SIGCONT")
        self.state = self.state or "draining"
        return self._callback("_drain_callback", "drain")

    def resume(self) -> None:
        if self.state == "draining":
            log.info("continuing: events are handled again")
            self.state = None

    def terminate(self) -> Optional[Any]:
        """Stop handling events for good and call the termination callback, once."""
        self.state = "terminating"
        if self._terminated:
            return None
        self._terminated = True
        log.info("terminating: events are answered 503 until the processor stops this process")
        return self._callback("_termination_callback", "termination")

    def _callback(self, attribute: str, name: str) -> Optional[Any]:
        """Call the callback the handler set on `context.platform`; its awaitable, if any."""
        assert self.function is not None
        callback = getattr(self.function.context.platform, attribute, None)
        if callback is None:
            return None
        try:
            return callback()
        except Exception:
            log.exception("the %s callback raised", name)
            return None

    # --- events -------------------------------------------------------------------------

    def _serve_blocking(self, function: PreparedHandler) -> int:
        read = FrameReader(self.event_sock).read
        decode = self.settings.decode_strings
        perf_counter = time.perf_counter_ns
        respond = function.respond
        send = self._send_blocking
        while True:
            try:
                payload = read()
            except ProcessorGone as exc:
                return self.gone(exc)
            if self.state is not None:
                send(self.refused(payload))
                continue
            try:
                events, batch = codec.decode_events(payload, decode)
            except codec.MalformedEvent as exc:
                send(malformed(exc))
                continue
            started = perf_counter()
            if batch:
                try:
                    results = function.settle(function.call(events))
                except HANDLER_ERRORS as exc:
                    send(self.failed_batch(events, exc))
                    continue
                answer = self.answer_batch(events, results)
                send(codec.reply_lines(answer, perf_counter() - started))
                continue
            try:
                reply = respond(events)
                if reply.stream is not None:
                    reply = function.collected(reply, events)
            except HANDLER_ERRORS as exc:  # respond answers Exception and SystemExit itself
                reply = function.fail(exc, codec.event_id(events))
            send(codec.event_lines(reply, perf_counter() - started))

    def failed_batch(self, events: list[Any], exc: BaseException) -> bytes:
        """The `r` line (no `m`, as for any handler that raised) answering every event of a
        batch whose handler raised."""
        assert self.function is not None
        reply = self.function.fail(exc, batch_id(events))
        return codec.error_line(self.answer_batch(events, reply))

    def answer_batch(self, events: list[Any], results: Any) -> bytes:
        """One response object per result, with its `event_id` (the event at the same
        position when the handler did not set one); a non-list result answers every event."""
        if not isinstance(results, list):
            results = [results] * len(events)
        assert self.function is not None
        convert = self.function.conversion.output
        answers = []
        for index, result in enumerate(results):
            given = getattr(result, "event_id", None)
            if given is None and index < len(events):
                given = codec.event_id(events[index])
            if given is not None and type(given) is not str:
                given = codec.id_text(given)  # e.g. Response(event_id=event.id) in raw mode
            try:
                reply = result if isinstance(result, Reply) else convert(result)
                stream = reply.stream
                if stream is not None and not hasattr(stream, "__anext__"):
                    reply.body = collect(stream).body
            except HANDLER_ERRORS as exc:  # e.g. a dict json cannot encode
                reply = self.function.fail(exc, "" if given is None else given)
            answers.append(codec.response_json(reply, given))
        return codec.batch_json(answers)

    def refused(self, payload: bytes) -> bytes:
        """The answer to an event that arrives while draining or terminating: 503, and the
        header with which Nuclio's stream triggers (Kafka, v3io, explicit ack `enable`) do not
        commit its offset, for it was never handled."""
        try:
            events, batch = codec.decode_events(payload, self.settings.decode_strings)
        except codec.MalformedEvent as exc:
            return malformed(exc)
        reason = f"Event discarded: worker {self.state}"
        if not batch:
            return codec.error_line(_status(503, reason, no_ack=True))
        answers = [_status(503, reason, codec.event_id(e), no_ack=True) for e in events]
        return codec.error_line(codec.batch_json(answers))

    def gone(self, exc: WrapperError) -> int:
        """The processor is gone or broke the framing: exit 1 as Nuclio's wrapper does (0
        once terminating, when the processor closing the socket is the expected end)."""
        if isinstance(exc, ProcessorClosed):
            log.info("%s: exiting", exc.message)
        else:
            log.error("stopping: %s", exc.message)
        return 0 if self.state == "terminating" else 1


def batch_id(events: list[Any]) -> str:
    """The id a failed batch's log lines and error bodies carry: its first event's."""
    return codec.event_id(events[0]) if events else ""


def malformed(exc: codec.MalformedEvent) -> bytes:
    """The answer to a frame that holds no event, logged and never fatal: 500 as Nuclio's
    wrapper answers it ("Exception caught while serving"). A list frame (a batch) gets an
    array with an answer per item carrying its id, as every batch answer does: the processor
    drops a batch result without an `event_id`."""
    log.warning("malformed event: %s", exc)
    reason = f'Exception caught while serving - "malformed event: {exc}"'
    if exc.ids is None:
        return codec.error_line(_status(500, reason))
    return codec.error_line(codec.batch_json([_status(500, reason, i) for i in exc.ids]))


NO_ACK = {"X-Nuclio-Stream-No-Ack": True}
"""What keeps Nuclio's stream triggers from committing an event's offset: they look this exact
key up in the answer's headers and want JSON true (processor/trigger/kafka, v3iostream)."""


def _status(status: int, text: str, event: Optional[str] = None, no_ack: bool = False) -> bytes:
    """A response object of the runtime's own, text/plain as Nuclio's wrapper answers."""
    reply = Reply(status, text.encode(), NUCLIO_TEXT)
    if no_ack:
        reply.headers = {name: "true" for name in NO_ACK}
        reply.typed_headers = dict(NO_ACK)
    return codec.response_json(reply, event)


def _run_sync(result: Optional[Any]) -> None:
    """Finish a callback's result: an awaitable runs to completion in a loop of its own."""
    if result is not None and hasattr(result, "__await__"):
        import asyncio

        async def awaited() -> None:
            await result

        try:
            asyncio.run(awaited())
        except Exception:
            log.exception("a signal callback raised")


def _not_connected(data: bytes) -> None:
    raise AssertionError("a line sent before the event socket was connected")

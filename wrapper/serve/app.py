"""The ASGI app each serve worker runs: an HTTP request becomes an event for the handler."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from wrapper.errors import ExitCode, WrapperError
from wrapper.events import make_event, request_id_from
from wrapper.invocation import Interruption, PreparedHandler, stopped_by_runtime
from wrapper.reply import JSON, Reply, Unawaited, chunk_content_type, dump_json, encode_chunk
from wrapper.serve.console_logs import ship_logs
from wrapper.serve.metrics import WorkerMetrics
from wrapper.serve.state import record_failure
from wrapper.serve.watchdog import Watchdog

log = logging.getLogger("wrapper.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ServeOptions:
    """What shapes request handling in a worker."""

    request_timeout: float = 60.0
    max_body_bytes: int = 32 * 1024 * 1024
    concurrency: int = 1
    state_dir: Optional[Path] = None  # metrics and readiness (None: not counted)
    recycle: Callable[[], None] = field(default=lambda: _stop_this_worker())
    """Called after a response when the worker must be replaced (a sync call timed out)."""
    ship_logs: Optional[Path] = None
    """The test page's log socket: each request's records are sent there (console_logs.py)."""


TRANSPORT = "fn_wrapper.transport"
"""The scope key under which the worker's HTTP protocol gives the request's connection (for
the watchdog's 504); absent in-process (wrapper.testing)."""


class RequestTimedOut(Interruption):
    """Raised into a sync handler running past the request timeout (by SIGALRM)."""


class ServeApp:
    """Loads the function at startup (after fork), then answers each HTTP request with it.

    A sync handler is called inline (one at a time, as Nuclio does; a SIGALRM bounds it); with
    `concurrency` above 1 it runs in that many threads. An async handler runs on the event
    loop, at most `concurrency` at once. A handler past the timeout answers 504; a sync one
    cannot be stopped cleanly, so its worker is recycled (replaced, init runs again).
    """

    def __init__(self, load: Callable[[], PreparedHandler], options: ServeOptions) -> None:
        self._load = load
        self.options = options
        self.function: Optional[PreparedHandler] = None
        self._metrics: Optional[WorkerMetrics] = None
        self._limit: Optional[asyncio.Semaphore] = None
        self._threads: Optional[ThreadPoolExecutor] = None
        self._alarm = False  # SIGALRM bounds inline sync calls
        self._recycling = False
        self._watchdog = Watchdog(options.request_timeout, self._overran)

    def prepare(self) -> None:
        """Load the function and run a sync init now (pre-loading, in the master)."""
        self._started_at = time.perf_counter()
        self.function = self._load()
        self.function.start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    # --- startup --------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except BaseException as exc:  # reported, then the worker stops
                    await send({"type": "lifespan.startup.failed", "message": _failure(exc, self)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._threads is not None:
                    self._threads.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Load the function and run init (unless pre-loaded), then count as ready."""
        if self.options.ship_logs is not None:
            ship_logs(self.options.ship_logs)
        if self.function is None:
            self._started_at = time.perf_counter()
            self.function = self._load()
            await self.function.astart()
        function, options = self.function, self.options
        if options.state_dir is not None:
            self._metrics = WorkerMetrics(options.state_dir, os.getpid())
            function.on_failure = self._metrics.handler_failed
        self._limit = asyncio.Semaphore(options.concurrency)
        function.hand_back_awaitables = True  # awaited on this loop (`_awaited_reply`)
        if not function.needs_loop and options.concurrency > 1:
            self._threads = ThreadPoolExecutor(options.concurrency, "handler")
        elif not function.needs_loop and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, _time_out)
            self._alarm = True
        if self._metrics is not None:
            self._metrics.ready(time.perf_counter() - self._started_at)

    # --- requests -------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        metrics = self._metrics
        if metrics is not None:
            metrics.started()
        status = 500
        try:
            body = await _read_body(scope, receive, self.options.max_body_bytes)
            if body is None:
                status = 413
                request_id = request_id_from(_header(scope, b"x-request-id"))
                too_large = _problem(413, "request body too large", request_id)
                await _send_whole(send, too_large, request_id)
                return
            event = make_event(
                body,
                method=scope["method"],
                path=scope["path"],
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                query=scope["query_string"].decode("latin-1"),
            )
            transport: Any = scope.get(TRANSPORT)
            watched = None if transport is None else self._watchdog.watch(transport, event.id)
            reply = await self._respond(event, started)
            if watched is not None and not self._watchdog.claim(watched):
                status = 504  # the watchdog answered: nothing more goes on this connection
                transport.abort()
                await asyncio.sleep(0)  # the loop sees it gone: uvicorn adds no answer
                return
            assert self.function is not None
            reply = self.function.for_http(reply, event)
            status = reply.status
            head = event.method == "HEAD"
            if reply.stream is None:
                await _send_whole(send, reply, event.id, head)
            else:
                status = await self._send_stream(send, reply, event, head)
        finally:
            if metrics is not None:
                metrics.finished(status, time.perf_counter() - started)
            if self._recycling:
                self._recycle()

    async def _respond(self, event: Any, started: float) -> Reply:
        function = self.function
        assert function is not None and self._limit is not None
        timeout = self.options.request_timeout
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                return function.respond(event)
            except RequestTimedOut:
                return self._timed_out(event, recycle=True)
            except Unawaited as returned:
                pending = returned.awaitable
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            return await self._awaited_reply(pending, event, started)
        async with self._limit:
            try:
                if self._threads is None:
                    return await asyncio.wait_for(function.arespond(event), timeout)
                call = asyncio.get_running_loop().run_in_executor(
                    self._threads, function.respond, event
                )
                return await asyncio.wait_for(call, timeout)
            except asyncio.TimeoutError:
                return self._timed_out(event, recycle=self._threads is not None)
            except Unawaited as returned:
                pending = returned.awaitable
            return await self._awaited_reply(pending, event, started)

    async def _awaited_reply(self, awaitable: Any, event: Any, started: float) -> Reply:
        """The reply for an awaitable a sync-looking handler returned (an async function
        behind a plain decorator), awaited on this loop in what is left of the timeout."""
        assert self.function is not None
        left = max(started + self.options.request_timeout - time.perf_counter(), 0.001)
        try:
            return await asyncio.wait_for(self.function.afinish(awaitable, event), left)
        except asyncio.TimeoutError:
            return self._timed_out(event, recycle=False)

    def _timed_out(self, event: Any, recycle: bool) -> Reply:
        timeout = self.options.request_timeout
        log.error("request %s: handler ran past %g s; answered 504", event.id, timeout)
        if recycle:
            log.error("recycling this worker: its handler call could not be stopped cleanly")
            self._recycling = True
        return _problem(504, "handler timed out", event.id)

    def _overran(self) -> None:
        """The watchdog answered a request whose call overran: replace this worker after it."""
        self._recycling = True

    def _recycle(self) -> None:
        self._recycling = False
        self.options.recycle()

    async def _send_stream(self, send: Send, reply: Reply, event: Any, head: bool) -> int:
        """Send a generator's chunks as they come (the first sets the content type), within
        the request timeout; returns the status sent. A HEAD request gets the headers only."""
        chunks = _chunks(reply.stream, self.options.request_timeout, self._alarm)
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except (asyncio.TimeoutError, RequestTimedOut):
            await _send_whole(send, self._timed_out(event, recycle=self._alarm), event.id, head)
            return 504
        except BaseException as exc:  # failed before any byte went out
            if stopped_by_runtime(exc, in_loop=True):
                raise
            failed = self._stream_failed(exc, event)
            await _send_whole(send, failed, event.id, head)
            return failed.status
        content_type = reply.content_type or chunk_content_type(first)
        await send(_start_message(reply.status, content_type, None, event.id, reply.headers))
        if head:
            await chunks.aclose()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return reply.status
        if first is not None:
            await send(_body_message(first))
        try:
            async for chunk in chunks:
                await send(_body_message(chunk))
        except (asyncio.TimeoutError, RequestTimedOut):  # headers are gone: end the stream
            self._timed_out(event, recycle=self._alarm)
        except BaseException as exc:
            if stopped_by_runtime(exc, in_loop=True):
                raise
            self._stream_failed(exc, event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return reply.status

    def _stream_failed(self, exc: BaseException, event: Any) -> Reply:
        assert self.function is not None
        return self.function.fail(exc, event.id)


async def _chunks(stream: Any, timeout: float, alarm: bool) -> Any:
    """The stream's chunks (None chunks skipped) until `timeout` seconds from now: an async
    generator's steps are bounded by wait_for, a sync one's by SIGALRM when `alarm`."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(deadline - time.monotonic(), 0.001)
        if hasattr(stream, "__anext__"):
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), left)
            except StopAsyncIteration:
                return
        else:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, left)
            try:
                chunk = next(stream)
            except StopIteration:
                return
            finally:
                if alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        if chunk is not None:
            yield chunk


def _body_message(chunk: Any) -> dict[str, Any]:
    return {"type": "http.response.body", "body": encode_chunk(chunk), "more_body": True}


def _stop_this_worker() -> None:
    """Stop taking requests and exit once in-flight ones are answered (SIGTERM to self);
    the master starts a fresh worker, which runs init again."""
    os.kill(os.getpid(), signal.SIGTERM)


def _time_out(signum: int, frame: Any) -> None:
    raise RequestTimedOut()


async def _read_body(scope: Scope, receive: Receive, limit: int) -> Optional[bytes]:
    """The request body, or None when it is (or says it will be) over `limit` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_SET_BY_THE_DOOR = frozenset(("x-request-id", "date"))
"""Headers this door sets itself (uvicorn the date): a handler's are dropped, never doubled.
The framing ones were dropped already (`reply.for_http`)."""


def _start_message(
    status: int,
    content_type: Optional[str],
    length: Optional[int],
    request_id: str,
    extra: dict[str, str],
) -> dict[str, Any]:
    """Headers of a reply that `for_http` made valid: names are tokens, values hold no
    control characters (a value that is not Latin-1 has its other characters as '?')."""
    headers = [(b"x-request-id", request_id.encode("latin-1"))] if request_id else []
    if content_type:
        headers.append((b"content-type", content_type.encode("latin-1", "replace")))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    for name, value in extra.items():
        if name.lower() not in _SET_BY_THE_DOOR:
            headers.append((name.encode("ascii"), value.encode("latin-1", "replace")))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send_whole(send: Send, reply: Reply, request_id: str, head: bool = False) -> None:
    """A whole reply: its length, and its body but to a HEAD request (204 and 304 have none)."""
    body, status = reply.body, reply.status
    length = None if status == 204 or status == 304 else len(body)
    await send(_start_message(status, reply.content_type, length, request_id, reply.headers))
    await send({"type": "http.response.body", "body": b"" if head else body})


def _header(scope: Scope, name: bytes) -> Optional[str]:
    """A request header's value (its first), by its lower-case name."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _problem(status: int, error: str, request_id: str) -> Reply:
    body = {"error": error, "request_id": request_id} if request_id else {"error": error}
    return Reply(status, dump_json(body), JSON)


def _failure(exc: BaseException, app: ServeApp) -> str:
    """Log why startup failed, leave the reason for the master, and return the message."""
    if isinstance(exc, WrapperError):
        message, code, details = exc.message, int(exc.exit_code), exc.details
    else:
        message = f"internal error while starting: {type(exc).__name__}: {exc}"
        code, details = int(ExitCode.INTERNAL_ERROR), traceback.format_exc()
    if app.options.state_dir is not None:
        record_failure(app.options.state_dir, code, message, details)
    log.error("worker %d could not start: %s", os.getpid(), message)
    return message

"""The gunicorn worker class of the serve door: the ASGI app on uvicorn (uvloop + httptools)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any, cast

import uvicorn

# Imported here, in the master, rather than by each worker at boot: uvicorn loads its
# protocol classes lazily, which would put them on every worker's start-up path.
import uvicorn.lifespan.on
import uvicorn.protocols.http.httptools_impl
from gunicorn.workers.base import Worker

from wrapper.events import new_request_id
from wrapper.serve.app import TRANSPORT
from wrapper.serve.watchdog import raw_problem

try:
    import uvloop
except ImportError:  # a platform without uvloop: asyncio's own loop
    uvloop = None  # type: ignore[assignment]

NOTIFY_SECONDS = 1.0
"""How often a worker tells the master it is alive (and checks the master still is)."""


class ServeWorker(Worker):  # type: ignore[misc]
    """Runs uvicorn's server on the sockets gunicorn bound, reporting liveness to the master."""

    BOOT_ERROR = 113
    """The exit of a worker whose init failed (the master judges it: _Arbiter.start_failed)."""

    def init_signals(self) -> None:
        # uvicorn's server handles SIGTERM / SIGINT itself (a graceful stop); keep USR1 for logs
        for number in self.SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)

    worker_id = 0
    """0..N-1, set by the master before the fork (wrapper.serve.server._number_worker)."""

    def run(self) -> None:
        import wrapper.logs

        wrapper.logs.WORKER_ID = str(self.worker_id)
        config = uvicorn_config(
            self.wsgi,
            keep_alive=self.cfg.keepalive,
            graceful_timeout=self.cfg.graceful_timeout,
            access_log=bool(self.cfg.accesslog),
            timeout_notify=min(self.timeout, NOTIFY_SECONDS),
            callback_notify=self._notify,
            limit_max_requests=self.max_requests or None,
        )
        logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, self.log.loglevel))
        server = self._server = Server(config)
        try:
            run_server(server, [_Listener(listener) for listener in self.sockets])
        except SystemExit:  # uvicorn exits 3 when startup fails
            if server.started:
                raise
        if not server.started:
            sys.exit(self.BOOT_ERROR)

    async def _notify(self) -> None:
        """Tell the master this worker is alive; stop if the master is gone (orphaned)."""
        self.notify()
        if os.getppid() != self.ppid:
            self.log.warning("the master (pid %s) is gone: stopping this worker", self.ppid)
            self._server.should_exit = True


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the serve door's app: no loop of its own (the caller's uvloop),
    httptools with request ids, lifespan on (init), no logging setup, no server header;
    `keep_alive`, `graceful_timeout`, `access_log` and uvicorn's own keywords in `options`."""
    return uvicorn.Config(
        app,
        loop="none",
        http=_http_parser(),
        lifespan="on",
        log_config=None,
        access_log=options.pop("access_log", False),
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=options.pop("keep_alive"),
        timeout_graceful_shutdown=options.pop("graceful_timeout"),
        **options,
    )


def run_server(server: uvicorn.Server, listeners: list[Any]) -> None:
    """Serve on `listeners` in a new event loop (uvloop where it is installed) until stopped."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(server.serve(sockets=listeners))
    finally:
        loop.close()


class Server(uvicorn.Server):
    """uvicorn's server, stopping in two steps: no new connections, then, after a moment,
    the idle ones closed. A connection accepted just before the stop has sent its request by
    then and is served; closed at once it would be dropped as idle (a reload's retired
    workers, a rolling update's old pods)."""

    async def shutdown(self, sockets: Any = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(ACCEPTED_LINGER)
        await super().shutdown(sockets)


ACCEPTED_LINGER = 0.2
"""Seconds between a stopping worker's last accept and its closing of idle connections."""


class _Listener:
    """A gunicorn listener as uvicorn is given it: uvloop closes the descriptor itself when the
    server stops, so uvicorn's own close after it is no error (gunicorn logged one per worker
    on every normal stop)."""

    def __init__(self, listener: Any) -> None:
        self._listener = listener

    def __getattr__(self, name: str) -> Any:
        return getattr(self._listener, name)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.sock.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop() if uvloop is None else uvloop.new_event_loop()


def _http_parser() -> Any:
    """httptools' protocol, giving each request's connection to the app (its watchdog answers
    on it); h11's where httptools is missing (the watchdog then only recycles the worker)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"

    class Protocol(HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            cast("dict[str, Any]", self.scope)[TRANSPORT] = self.transport
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            """A malformed request's 400, with a request id as every reply has."""
            self.transport.write(raw_problem(400, f"bad request: {msg}", new_request_id()))
            self.transport.close()

    return Protocol

"""The admin endpoints, served by a thread of the gunicorn master (so they answer while every
worker is busy): `/live`, `/ready` (every worker finished its first init, then while one
serves) and `/metrics`; with --dev or --reload, the test page too (wrapper.serve.console)."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

from wrapper.serve.console import Answer, Console, refusal
from wrapper.serve.metrics import Collector, ready_workers, started_workers

log = logging.getLogger("wrapper.serve")

IDLE_TIMEOUT = 5.0
"""Seconds an admin connection may stay silent (a probe sends its request at once)."""

PAGE_POLICY = (
    "default-src 'none'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'none'"
)
"""The test page's content security policy: nothing but its own origin, whatever a response
body or a log record holds."""

MAX_CONNECTIONS = 32
"""Admin connections served at once; one more is closed unanswered (each holds a thread of
the master)."""


class AdminServer:
    """`/live`, `/ready` and `/metrics` on their own port, for probes and Prometheus; the test
    page's endpoints when given a console."""

    def __init__(
        self,
        host: str,
        port: int,
        state_dir: Path,
        workers: int,
        live: Callable[[], list[int]],
        start_failures: Callable[[], int],
        console: Optional[Console] = None,
    ) -> None:
        self.state_dir, self.workers, self.live = state_dir, workers, live
        self.console = console
        self.start_failures = start_failures
        self.served = False
        """Every worker has finished its first init: from then on one serving worker is ready."""
        self._registry: Any = None
        admin = self

        class Handler(BaseHTTPRequestHandler):
            timeout = IDLE_TIMEOUT

            def do_GET(self) -> None:
                self._reply(*admin.answer(self.path, self.headers.get("Host")))

            def do_POST(self) -> None:
                self._reply(*admin.post(self))

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if content_type.startswith("text/html"):
                    self.send_header("Content-Security-Policy", PAGE_POLICY)
                    self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = _HTTPServer6 if ":" in host else _HTTPServer
        self.httpd = server((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="admin", daemon=True)

    def start(self) -> None:
        if self.console is not None:
            self.console.start()
        self.thread.start()
        host, port = self.httpd.server_address[:2]
        log.info("admin endpoints on http://%s:%s (/live, /ready, /metrics)", host, port)
        if self.console is not None:
            log.info("test page on http://%s:%s/", "127.0.0.1" if host == "0.0.0.0" else host, port)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
        if self.console is not None:
            self.console.stop()

    def answer(self, target: str, host: Optional[str] = None) -> Answer:
        """Status, content type and body for a GET of an admin path."""
        path, _, query = target.partition("?")
        console = self.console
        if console is not None and path in _PAGE_PATHS:
            refused = refusal(host)
            if refused is not None:
                return _error(403, refused)
        if console is not None and path == "/":
            return 200, "text/html; charset=utf-8", console.page
        if console is not None and path == "/console/info":
            return console.info(self.workers)
        if console is not None and path == "/console/logs":
            return console.records(query)
        if path == "/live":
            return 200, "application/json", b'{"live":true}'
        if path == "/ready":
            live = self.live()
            ready = ready_workers(self.state_dir, live)
            self.served = self.served or started_workers(self.state_dir) >= self.workers
            state = {
                "ready": self.served and ready > 0,
                "workers": len(live),
                "ready_workers": ready,
                "expected_workers": self.workers,
            }
            return (200 if state["ready"] else 503), "application/json", json.dumps(state).encode()
        if path == "/metrics":
            return self._metrics()
        return 404, "application/json", b'{"error":"not found: /live, /ready or /metrics"}'

    def post(self, request: BaseHTTPRequestHandler) -> Answer:
        """The test page's `/console/send`: a JSON request from the page itself, bounded."""
        console = self.console
        if console is None or request.path != "/console/send":
            request.close_connection = True
            return 404, "application/json", b'{"error":"not found"}'
        headers = request.headers
        refused = refusal(headers.get("Host"), headers.get("Origin"))
        if refused is not None:
            request.close_connection = True
            return _error(403, refused)
        if headers.get_content_type() != "application/json":
            request.close_connection = True
            return _error(415, "Content-Type: application/json expected")
        try:
            length = int(headers.get("Content-Length", ""))
        except ValueError:
            request.close_connection = True
            return _error(411, "Content-Length expected")
        if not 0 <= length <= console.max_request:
            request.close_connection = True
            return _error(413, f"the request is over {console.max_request} bytes")
        return console.send(request.rfile.read(length))

    def _metrics(self) -> tuple[int, str, bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry()
            self._registry.register(Collector(self.state_dir, self.live, self.start_failures))
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)


_PAGE_PATHS = frozenset(("/", "/console/info", "/console/logs"))


def _error(status: int, message: str) -> Answer:
    return status, "application/json", json.dumps({"error": message}).encode()


class _HTTPServer(ThreadingHTTPServer):
    """http.server's threading server without its reverse DNS lookup at bind (`getfqdn`),
    which can stall a pod's start for as long as the cluster DNS takes to answer."""

    daemon_threads = True
    request_queue_size = 64  # socketserver's 5 makes a burst of probes wait on SYN retries

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to MAX_CONNECTIONS; past that the connection is closed."""
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6

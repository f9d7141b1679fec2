"""A per-worker thread that answers 504 for a request whose handler overran its deadline, when
nothing in the worker's event loop can: a handler that blocks the loop (`time.sleep` in an
`async def`), or that swallows the timeout (a bare `except:` around a sleep, a caught
`CancelledError`).

The loop registers each request (its deadline, connection and id: a dict insert, no thread hop)
and claims it before it sends a reply; the watchdog claims what is past its deadline, writes
the 504 on the connection itself and shuts the connection down. Whoever claims a request first
answers it. The worker is then recycled; one whose loop never comes back is killed by the
master's hard limit.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Optional

from wrapper.reply import dump_json

log = logging.getLogger("wrapper.serve")

POLL = 0.05
"""Seconds between the watchdog's looks at the requests in flight."""

GRACE = 0.1
"""Seconds past a deadline the watchdog leaves to the loop's own 504 (which keeps the
connection open) before it answers itself."""


class Watchdog:
    """The requests in flight in one worker, and the thread that times them out."""

    def __init__(self, timeout: float, expired: Callable[[], None]) -> None:
        self.timeout, self.expired = timeout, expired
        self._pending: dict[int, tuple[float, Any, str]] = {}
        self._keys = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def watch(self, transport: Any, request_id: str) -> int:
        """Register a request from now; the key to claim it with."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()
        key = next(self._keys)
        self._pending[key] = (time.monotonic() + self.timeout, transport, request_id)
        return key

    def claim(self, key: int) -> bool:
        """True when the caller may answer the request (the watchdog has not)."""
        return self._pending.pop(key, None) is not None

    def _run(self) -> None:
        while True:
            time.sleep(POLL)
            now = time.monotonic()
            for key, (deadline, transport, request_id) in list(self._pending.items()):
                if now >= deadline + GRACE and self.claim(key):
                    self._answer(transport, request_id)

    def _answer(self, transport: Any, request_id: str) -> None:
        log.error(
            "request %s: handler ran past %g s and kept the worker busy; answered 504 from "
            "the watchdog, recycling this worker",
            request_id, self.timeout,
        )  # fmt: skip
        self.expired()
        with contextlib.suppress(OSError, AttributeError, ValueError):
            descriptor = transport.get_extra_info("socket").fileno()
            os.write(descriptor, raw_problem(504, "handler timed out", request_id))
            with socket.socket(fileno=os.dup(descriptor)) as connection:
                connection.shutdown(socket.SHUT_RDWR)


REASONS = {400: "Bad Request", 504: "Gateway Timeout"}


def raw_problem(status: int, error: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 error reply (JSON `{error, request_id}`) that closes the connection,
    written where no ASGI cycle can answer (the watchdog, the HTTP parser's 400)."""
    body = dump_json({"error": error, "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body

"""Each request's log records, handed by the workers to the admin server for the test page.

A worker sends every record logged while it handles a request (one that has a request id) as
one JSON datagram to a Unix datagram socket in the server's state folder, without waiting: a
record the socket cannot take at once is dropped, so a worker never slows down for the page.
The admin server keeps the records of the last MAX_REQUESTS requests, at most
MAX_RECORDS each, in memory (`LogBuffer`); older ones are forgotten.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

import wrapper.logs
from wrapper.logs import REQUEST_ID, MaskingFormatter
from wrapper.secrets import Redaction

SOCKET_NAME = "console.sock"

LONGEST_PATH = 100
"""Characters a Unix socket path may have (108 on Linux, with room to spare)."""

MAX_REQUESTS = 100
"""Requests whose records the admin server keeps (the newest)."""

MAX_RECORDS = 200
"""Records kept per request (the first ones; the rest are dropped)."""

MAX_TEXT = 8192
"""Characters kept of a record's message and of its exception text (one datagram each)."""


class LogShipper(logging.Handler):
    """A worker's log handler sending each request's records to the admin server."""

    def __init__(self, path: Path, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.path = str(path)
        self.fields = MaskingFormatter(Redaction.from_environment()).fields  # as on the terminal
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def emit(self, record: logging.LogRecord) -> None:
        request_id = REQUEST_ID.get()
        if request_id is None:
            return
        try:
            message, extra, exception = self.fields(record)
            entry: dict[str, Any] = {
                "request_id": request_id,
                "time": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message[:MAX_TEXT],
                "worker_id": wrapper.logs.WORKER_ID,
            }
            if extra:
                entry["with"] = extra
            if exception is not None:
                entry["exception"] = exception[-MAX_TEXT:]
            data = json.dumps(entry, default=repr, ensure_ascii=False).encode()
            self.sock.sendto(data, self.path)
        except OSError:
            pass  # the buffer is full, the datagram too large, or the admin server is gone
        except Exception:  # a record that cannot be encoded: as logging does, say so, go on
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def ship_logs(path: Path) -> None:
    """Add a LogShipper to the root logger (a worker's start, when the test page is on)."""
    root = logging.getLogger()
    if not any(isinstance(handler, LogShipper) for handler in root.handlers):
        root.addHandler(LogShipper(path))


class LogBuffer:
    """The admin server's side: records by request id, for the last MAX_REQUESTS requests."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / SOCKET_NAME
        self._own_folder: Optional[Path] = None
        if len(str(path)) > LONGEST_PATH:  # a deep TMPDIR: a private folder in /tmp instead
            self._own_folder = Path(tempfile.mkdtemp(prefix="fn-wrapper-", dir="/tmp"))
            path = self._own_folder / SOCKET_NAME
        self.path = path
        """Where the workers send their records."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.setblocking(False)
        self._requests: collections.OrderedDict[str, list[dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._receive, name="console-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)

    def records(self, request_id: str) -> list[dict[str, Any]]:
        """The records of a request so far: every one sent before this call is included."""
        self.drain()
        with self._lock:
            return list(self._requests.get(request_id, ()))

    def _receive(self) -> None:
        while self._running:
            with contextlib.suppress(OSError, ValueError):
                select.select([self.sock], [], [], 0.5)
                self.drain()

    def drain(self) -> None:
        """Take every datagram waiting in the socket (under the lock: a reader that drains
        knows every record sent before it is in)."""
        with self._lock:
            while True:
                try:
                    data = self.sock.recv(1 << 16)
                except (BlockingIOError, OSError):
                    return
                self._keep(data)

    def _keep(self, data: bytes) -> None:
        try:
            entry = json.loads(data)
            request_id = str(entry.pop("request_id"))
        except (ValueError, KeyError, AttributeError, TypeError):
            return
        records = self._requests.get(request_id)
        if records is None:
            records = self._requests[request_id] = []
            while len(self._requests) > MAX_REQUESTS:
                self._requests.popitem(last=False)
        if len(records) < MAX_RECORDS:
            records.append(entry)

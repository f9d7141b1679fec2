"""The processor's sockets: connecting, reading length-prefixed frames, writing lines.

Processor → wrapper: a 4-byte big-endian length, then that many bytes of msgpack. Wrapper →
processor: text lines, the first byte naming the message (NUCLIO_PROTOCOL.md §4, §5, §8).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

from wrapper.errors import WrapperError

MAX_FRAME = 1 << 30
"""The largest frame accepted (1 GiB, as Nuclio's own wrapper)."""

CONNECT_ATTEMPTS = 60
"""Connection attempts per socket, one second apart, as Nuclio's wrapper makes them."""


class ProcessorGone(WrapperError):
    """The processor closed the event socket or sent a frame that cannot be framed: fatal."""


class ProcessorClosed(ProcessorGone):
    """The processor closed the event socket between frames: the usual way a worker ends."""


def connect(path: str, attempts: int = CONNECT_ATTEMPTS, delay: float = 1.0) -> socket.socket:
    """A blocking connection to the processor's Unix socket at `path`."""
    if not path.startswith("/") and ":" in path:
        raise WrapperError(
            f"--event-socket-path {path!r} is host:port: Nuclio's TCP (async) mode, in which "
            "the wrapper listens, is not supported; use the Unix-socket Python runtime"
        )
    for attempt in range(attempts):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as exc:
            sock.close()
            if attempt + 1 == attempts:
                raise WrapperError(
                    f"cannot connect to the processor's socket {path}: {exc.strerror or exc}"
                ) from None
            time.sleep(delay)
    raise AssertionError("unreachable")


class FrameReader:
    """Reads frames from a blocking socket with few system calls: the processor writes a
    frame's length and its payload separately, so usually one `recv` returns the length and
    one more (waiting for all of it) the payload."""

    CHUNK = 64 * 1024

    def __init__(self, sock: socket.socket) -> None:
        self._recv = sock.recv
        self._pending = b""

    def read(self) -> bytes:
        """The next frame's payload; ProcessorGone at the end of the stream or on a bad length."""
        data = self._pending
        while len(data) < 4:
            chunk = self._recv(self.CHUNK)
            if not chunk:
                raise _closed(mid_frame=bool(data))
            data += chunk
        end = frame_length(data[:4]) + 4
        if len(data) >= end:
            self._pending = data[end:]
            return data[4:end]
        self._pending = b""
        return self._rest(data[4:], end - 4)

    def _rest(self, start: bytes, length: int) -> bytes:
        """A payload of `length` bytes whose first part is `start` (often empty)."""
        chunks = [start] if start else []
        missing = length - len(start)
        while missing:  # more than one pass only when a signal interrupts the wait
            chunk = self._recv(missing, socket.MSG_WAITALL)
            if not chunk:
                raise _closed(mid_frame=True)
            chunks.append(chunk)
            missing -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _closed(mid_frame: bool) -> ProcessorGone:
    """The error for the end of the stream (fatal in the middle of a frame)."""
    if mid_frame:
        return ProcessorGone("the processor closed the event socket in the middle of a frame")
    return ProcessorClosed("the processor closed the event socket")


def frame_length(head: bytes) -> int:
    """The length a frame's 4-byte head announces; ProcessorGone when it cannot be one."""
    length = int.from_bytes(head, "big", signed=True)
    if not 0 < length <= MAX_FRAME:
        raise ProcessorGone(f"a frame announced {length} bytes (expected 1 to {MAX_FRAME})")
    return length


class LineWriter:
    """Writes whole lines to a blocking socket; a lock keeps lines from threads whole."""

    def __init__(self, sock: socket.socket) -> None:
        self._sendall: Callable[[bytes], None] = sock.sendall
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self._lock:
            self._sendall(data)

"""A raw HTTP(S) server on 127.0.0.1 for tests of misbehaving peers: it plays a behaviour
(a function given the accepted socket) on every connection, bytes exactly as written."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import Callable

Behaviour = Callable[[socket.socket], None]


def drip_headers(conn: socket.socket) -> None:
    """Headers one byte every 0.3 s, never finished."""
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n" + b"X-Pad: " + b"a" * 1000:
        conn.sendall(bytes([byte]))
        time.sleep(0.3)


def stall_mid_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n")
    conn.sendall(b"n\n" + b"1\n" * 500)
    time.sleep(30)


def endless_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\nn\n")
    chunk = b"1\n" * 32768
    while True:
        conn.sendall(chunk)


def redirect_to(location: str) -> Behaviour:
    def answer(conn: socket.socket) -> None:
        conn.sendall(
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        time.sleep(1)

    return answer


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 that plays `behaviour` on every connection."""

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.behaviour, self.tls = behaviour, tls
        self.port, self.connections = self.listener.getsockname()[1], 0
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._play, args=(conn,), daemon=True).start()

    def _play(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.behaviour(conn)
        except OSError:
            pass  # the client went away
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()


class Proxy:
    """An HTTP proxy on 127.0.0.1 as curl and git know them: CONNECT tunnels (https) and
    absolute-URI requests (http), both piped to the target; it records each request's method,
    target and Proxy-Authorization header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.server = RawServer(self._relay)
        self.url = self.server.url("")

    def _relay(self, conn: socket.socket) -> None:
        head = read_head(conn)
        if not head:
            return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        pairs = (line.split(": ", 1) for line in lines[1:] if ": " in line)
        headers = {name.lower(): value for name, value in pairs}
        self.seen.append((method, target, headers.get("proxy-authorization", "")))
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            head = b""
        else:
            host, _, rest = target.split("://", 1)[1].partition("/")
            host, port = [*host.rsplit(":", 1), "80"][:2]
            head = head.replace(target.encode(), b"/" + rest.encode(), 1)
        with socket.create_connection((host, int(port))) as upstream:
            upstream.sendall(head)
            threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
            _pipe(conn, upstream)

    def close(self) -> None:
        self.server.close()


def read_head(conn: socket.socket) -> bytes:
    """A request's head as read from `conn` (with whatever of its body came along); empty
    when the client left first."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = conn.recv(65536)
        if not data:
            return b""
        head += data
    return head


def request_of(conn: socket.socket) -> tuple[str, str]:
    """The method and target of the request on `conn` (its head read)."""
    method, target = [*read_head(conn).split(b" ", 2), b"", b""][:2]
    return method.decode("latin-1"), target.decode("latin-1")


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

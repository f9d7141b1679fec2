"""The test page (`/` on the admin port, with --dev or --reload): send an event to the function
and see its answer and its log records.

The page talks to the admin server only (same origin): it reads `/console/info`, `/ready` and
`/metrics`, and posts `/console/send`, which the admin server forwards to the function's port
as an HTTP request with a request id of its own, then answers with the response and the
request's log records (wrapper.serve.console_logs). It is never on in production: the
rendered manifests give neither flag.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import json
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from wrapper.events import request_id_from
from wrapper.serve.console_logs import LogBuffer
from wrapper.serve.state import read_reload

MAX_RESPONSE = 16 * 1024 * 1024
"""Bytes of a response body the page gets; the rest is cut (and said so)."""

FORWARD_MARGIN = 10.0
"""Seconds past the request timeout the admin server waits for the function's answer."""

Answer = tuple[int, str, bytes]
"""Status, content type and body of an admin answer."""


@dataclass(frozen=True)
class FunctionCard:
    """What the page shows about the function."""

    name: str
    handler: str
    source: str
    mode: str  # "dev" or "reload"


class Console:
    """The test page's endpoints, forwarding to the function at `host:port`."""

    def __init__(
        self,
        card: FunctionCard,
        state_dir: Path,
        host: str,
        port: int,
        request_timeout: float,
        max_body_bytes: int,
    ) -> None:
        self.card, self.state_dir = card, state_dir
        self.target = (_reachable(host), port)
        self.timeout = request_timeout + FORWARD_MARGIN
        self.max_request = max_body_bytes * 4 // 3 + 64 * 1024  # base64 and the JSON around it
        self.logs = LogBuffer(state_dir)
        self.page = (resources.files("wrapper.serve") / "console.html").read_bytes()

    def start(self) -> None:
        self.logs.start()

    def stop(self) -> None:
        self.logs.stop()

    def info(self, workers: int) -> Answer:
        card = self.card
        return _json(
            200,
            {
                "name": card.name,
                "handler": card.handler,
                "source": card.source,
                "mode": card.mode,
                "workers": workers,
                "reload": read_reload(self.state_dir),
            },
        )

    def records(self, query: str) -> Answer:
        request_id = urllib.parse.parse_qs(query).get("request_id", [""])[0]
        if not request_id:
            return _json(400, {"error": "request_id: give the id of a request"})
        return _json(200, {"request_id": request_id, "logs": self.logs.records(request_id)})

    def send(self, data: bytes) -> Answer:
        """Forward the page's request to the function; its answer and log records back."""
        try:
            request = json.loads(data)
            method, target, headers, body = _outgoing(request)
        except (ValueError, TypeError, binascii.Error) as exc:
            return _json(400, {"error": _reason(exc)})
        given = next((value for name, value in headers if name.lower() == "x-request-id"), None)
        request_id = request_id_from(given)
        headers = [(name, value) for name, value in headers if name.lower() not in _SET_HERE]
        host, port = self.target
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            has_host = any(name.lower() == "host" for name, _ in headers)
            connection.putrequest(method, target, skip_host=has_host, skip_accept_encoding=True)
            for name, value in [*headers, ("X-Request-Id", request_id)]:
                connection.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            content = response.read(MAX_RESPONSE + 1)
        except ValueError as exc:  # http.client refuses a bad method, path or header
            return _json(400, {"error": _reason(exc)})
        except (OSError, http.client.HTTPException) as exc:
            where = f"{host}:{port}"
            return _json(502, {"error": f"the function did not answer on {where}: {_reason(exc)}"})
        finally:
            connection.close()
        elapsed = (time.perf_counter() - started) * 1000
        return _json(
            200,
            {
                "request_id": request_id,
                "status": response.status,
                "reason": response.reason,
                "headers": response.getheaders(),
                "body": base64.b64encode(content[:MAX_RESPONSE]).decode(),
                "truncated": len(content) > MAX_RESPONSE,
                "elapsed_ms": round(elapsed, 3),
                "logs": self.logs.records(request_id),
            },
        )


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP token (RFC 9110): what a method and a header name are made of."""

_SET_HERE = frozenset(("x-request-id", "content-length"))
"""Headers the forwarded request gets from the admin server, whatever the page gave."""


def _outgoing(request: Any) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """Method, target (path and query), headers and body of the page's request."""
    if not isinstance(request, dict):
        raise ValueError("the request: a JSON object with method, path, query, headers, body")
    method = str(request.get("method") or "GET").upper()
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"method: {method!r} is not an HTTP method")
    path = str(request.get("path") or "/")
    if not path.startswith("/"):
        raise ValueError(f"path: {path!r} does not start with /")
    query = urllib.parse.urlencode([(str(k), str(v)) for k, v in _pairs(request, "query")])
    if query:
        path += ("&" if "?" in path else "?") + query
    headers = [(str(name).strip(), str(value)) for name, value in _pairs(request, "headers")]
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"headers: {name!r} is not a header name")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"headers: the value of {name} has a line break or a NUL")
    body = base64.b64decode(str(request.get("body") or ""), validate=True)
    return method, path, headers, body


def _pairs(request: dict[str, Any], field: str) -> list[tuple[Any, Any]]:
    value = request.get(field) or []
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in value
    ):
        raise ValueError(f"{field}: a list of [name, value] pairs")
    return [(name, value) for name, value in value if str(name).strip()]


def _reachable(host: str) -> str:
    """The address to reach a server listening on `host` from this machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _json(status: int, value: Any) -> Answer:
    return status, "application/json", json.dumps(value, default=str).encode()


def refusal(host: Optional[str], origin: Optional[str] = None) -> Optional[str]:
    """Why a request may not use the test page, if it may not: its Host must be an address,
    localhost or this machine's name (a site whose name is made to point here, DNS
    rebinding, is not), and a browser's `Origin` must be the page's own."""
    if host is not None and not _known_host(host):
        return f"the test page answers at an address, localhost or {socket.gethostname()}"
    if origin is not None and origin != f"http://{host}":
        return "the test page answers its own origin only"
    return None


def _known_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]:" in host else host
    name = name.strip("[]").lower()
    if name in ("localhost", socket.gethostname().lower()) or name.endswith(".localhost"):
        return True
    try:
        return bool(ipaddress.ip_address(name))
    except ValueError:
        return False

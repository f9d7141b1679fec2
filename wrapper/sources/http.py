"""http(s) sources: one file or an archive, downloaded within bounds and revalidated by ETag."""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Optional
from urllib.parse import unquote, urljoin, urlsplit

from wrapper import __version__
from wrapper.errors import SourceError
from wrapper.sources import SourceTree
from wrapper.sources.blob import copy_bounded, noted_tree, pinned_tree, tree_from_file, tree_note
from wrapper.sources.cache import CodeCache
from wrapper.sources.settings import FetchLimits, SourceSettings, origin_of, tls_context
from wrapper.sources.uri import SourceURI, redact_uri

log = logging.getLogger("wrapper.sources")


def materialise_http(uri: SourceURI, settings: SourceSettings) -> SourceTree:
    """Download `uri` (once per content: pinned trees are reused as they are, others are
    revalidated with If-None-Match / If-Modified-Since) and turn it into a tree."""
    name = _file_name(uri.location)
    cache = CodeCache(settings.cache_dir)
    note_name = f"http {uri.location}"
    with cache.lock(note_name):  # one download however many workers start at once
        pinned = pinned_tree(uri, name, settings)
        if pinned is not None:
            log.info("reused %s (pinned by sha256)", uri.shown)
            return pinned
        note = None if uri.sha256 else cache.note(note_name)
        known = noted_tree(note)
        with cache.scratch() as scratch:
            answer = _download(uri, scratch, settings, note if known else None)
            if answer is None:
                log.info("reused %s (not modified)", uri.shown)
                assert known is not None  # a 304 answers only a conditional request
                return known
            tree = tree_from_file(Path(scratch.name), uri, settings, name=name)
        if not uri.sha256 and (answer.etag or answer.last_modified):
            cache.remember(
                note_name, tree_note(tree, etag=answer.etag, last_modified=answer.last_modified)
            )
    log.info("fetched %s (%d bytes)", uri.shown, answer.size)
    return tree


@dataclass(frozen=True)
class _Answer:
    size: int
    etag: Optional[str]
    last_modified: Optional[str]


def _download(
    uri: SourceURI, out: IO[bytes], settings: SourceSettings, note: Optional[dict[str, Any]]
) -> Optional[_Answer]:
    """GET `uri` into `out`; None when the server says the noted copy is still current."""
    limits = settings.limits
    request = urllib.request.Request(
        uri.location,
        headers={"User-Agent": f"fn-wrapper/{__version__}", "Accept-Encoding": "identity"},
    )
    if uri.username is not None:
        pair = f"{uri.username}:{uri.password or ''}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    if note and note.get("etag"):
        request.add_header("If-None-Match", note["etag"])
    if note and note.get("last_modified"):
        request.add_header("If-Modified-Since", note["last_modified"])
    started = time.monotonic()
    deadline = Deadline(limits.total_timeout)
    try:
        with open_bounded(request, limits, deadline) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_download_bytes:
                raise _refused(
                    uri,
                    f"its {declared} bytes exceed max_download_bytes={limits.max_download_bytes}",
                )
            size = copy_bounded(response.read1, out, uri=uri, settings=settings, started=started)
            if deadline.expired:  # the watchdog cut the body short
                raise _refused(uri, deadline.reason())
            out.flush()
            headers = response.headers
            return _Answer(size, headers.get("ETag"), headers.get("Last-Modified"))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and note:
            return None
        raise _refused(uri, failure_reason(exc, limits, deadline)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _refused(uri, failure_reason(exc, limits, deadline)) from None
    finally:
        deadline.cancel()


class Deadline:
    """A wall-clock limit on one transfer. A watchdog shuts the transfer's sockets when it
    passes, so a server that drips its headers or body a byte at a time cannot hold a read
    past it (a socket timeout alone bounds only each wait)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left (at least a little, so a zero timeout never means "block")."""
        return max(self.ends - time.monotonic(), 0.001)

    def reason(self) -> str:
        return f"download took longer than {self.seconds:g} s"

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` at the deadline (at once when it has already passed)."""
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake a read blocked on `sock` (another thread's) with end-of-file."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw fd, also under TLS


def open_bounded(
    request: urllib.request.Request, limits: FetchLimits, deadline: Deadline
) -> http.client.HTTPResponse:
    """Open `request` within `limits`: connect within connect_timeout, each read within
    read_timeout, everything (connect, headers, body) before `deadline`; only http(s)
    redirects, never https to http, at most max_redirects. Failures are urllib's errors
    (`failure_reason` words them)."""
    opener = urllib.request.build_opener(
        _Redirects(limits.max_redirects),
        _HTTPHandler(limits, deadline),
        _HTTPSHandler(limits, deadline),
    )
    timeout = min(limits.connect_timeout, deadline.left())
    return opener.open(request, timeout=timeout)  # type: ignore[no-any-return]


def failure_reason(exc: BaseException, limits: FetchLimits, deadline: Deadline) -> str:
    """A short, secret-free reason for a failed `open_bounded` transfer."""
    if deadline.expired:
        return deadline.reason()
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:
            return f"more than max_redirects={limits.max_redirects} redirects"
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _reason(exc.reason, limits.connect_timeout)
    return _reason(exc, limits.read_timeout)


def _reason(error: Any, timeout: float) -> str:
    """A short, secret-free reason for a transport failure."""
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate not trusted ({error.verify_message}; see SSL_CERT_FILE or "
            "REQUESTS_CA_BUNDLE)"
        )
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__ if not str(error) else redact_uri(str(error))


def _refused(uri: SourceURI, reason: str) -> SourceError:
    return SourceError(f"code_src {uri.shown!r}: {reason}")


def _file_name(location: str) -> str:
    """The name a downloaded file gets: the URL path's last segment, made safe."""
    name = PurePosixPath(unquote(urlsplit(location).path)).name
    return name if name and "\\" not in name and "\x00" not in name else "download"


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow http(s) redirects only; never downgrade to http; drop credentials across origins."""

    def __init__(self, max_redirects: int) -> None:
        super().__init__()
        self.max_redirections = max_redirects  # type: ignore[misc]  # urllib's per-handler cap

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any
    ) -> Any:
        newurl = urljoin(req.full_url, headers.get("Location") or headers.get("URI") or "")
        scheme = urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            fp.close()
            raise urllib.error.URLError(f"redirect to a {scheme}: URL refused")
        if urlsplit(req.full_url).scheme == "https" and scheme == "http":
            fp.close()
            refused = f"redirect from https to http refused ({redact_uri(newurl)})"
            raise urllib.error.URLError(refused)
        # 308 is 307 for a GET (Python < 3.11 does not know 308)
        return super().http_error_302(req, fp, 307 if code == 308 else code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> Optional[urllib.request.Request]:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin_of(newurl) != origin_of(req.full_url):
            new.remove_header("Authorization")
        return new


def _timed(base: type[http.client.HTTPConnection], limits: FetchLimits, deadline: Deadline) -> Any:
    """`base` that connects within what is left of `deadline`, then waits at most
    read_timeout for each read, and whose socket the deadline's watchdog shuts."""

    class Timed(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            self.timeout = min(limits.connect_timeout, deadline.left())
            super().connect()  # TLS: the handshake too, each wait under the connect timeout
            deadline.watch(self.sock)
            self.sock.settimeout(min(limits.read_timeout, deadline.left()))

    return Timed


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, limits: FetchLimits, deadline: Deadline) -> None:
        super().__init__()
        self._connection = _timed(http.client.HTTPConnection, limits, deadline)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, limits: FetchLimits, deadline: Deadline) -> None:
        super().__init__()
        self._connection = _timed(http.client.HTTPSConnection, limits, deadline)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        try:
            context = tls_context()
        except ValueError as exc:  # a CA bundle variable naming no bundle
            raise urllib.error.URLError(str(exc)) from None
        return self.do_open(self._connection, req, context=context)

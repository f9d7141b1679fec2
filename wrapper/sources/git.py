"""`git+https://` sources: resolve a ref, fetch one commit over smart HTTP, write its tree safely.

dulwich's pure-Python client speaks the git protocol (slim images have no `git` binary). Our own
urllib3 pool adds credentials per request, only to the repository's own origin: dulwich never
sees them, so no URL or message of its can carry them, and a redirect elsewhere gets none.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import re
import ssl
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar
from urllib.parse import unquote, urlsplit

import urllib3
from dulwich.client import Urllib3HttpGitClient, default_user_agent_string
from dulwich.errors import GitProtocolError
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.repo import Repo

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceTree
from wrapper.sources.archive import SafeTree
from wrapper.sources.cache import CodeCache
from wrapper.sources.http import Deadline
from wrapper.sources.packs import check_pack
from wrapper.sources.settings import (
    ArchiveLimits,
    FetchLimits,
    SourceSettings,
    origin_of,
    proxy_for,
    tls_context,
)
from wrapper.sources.uri import SourceURI

if TYPE_CHECKING:
    from dulwich.client import HTTPResponse
    from dulwich.object_store import BaseObjectStore
    from dulwich.refs import Ref

log = logging.getLogger("wrapper.sources")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_SHORT_SHA = re.compile(r"[0-9a-f]{7,39}")
_GITLINK = 0o160000
_SCOPE = "FN_WRAPPER_GIT_CREDENTIAL_HOSTS"
_Origin = tuple[str, str]  # (scheme, "host:port")
_T = TypeVar("_T", bound=ShaFile)
_E = TypeVar("_E", bound=BaseException)


def materialise_git(uri: SourceURI, settings: SourceSettings) -> SourceTree:
    """The tree of the commit `uri` names (branch, tag, SHA or the remote's HEAD), or its subdir."""
    if uri.transport == "http" and not settings.allow_git_http:
        raise SourceError(
            f"code_src {uri.shown!r}: git over plain http is refused (code and credentials would "
            "travel unencrypted); use https, or allow it with --allow-git-http / "
            "FN_WRAPPER_ALLOW_GIT_HTTP=1"
        )
    cache = CodeCache(settings.cache_dir)
    ref = (uri.ref or "").lower()
    pinned = ref if _FULL_SHA.fullmatch(ref) else None
    folder = cache.find("git", pinned) if pinned else None
    if pinned and folder:  # a commit never changes: no network at all
        sha, verb = pinned, "reused cached"
    else:
        with cache.lock(f"git {uri.location}"):  # N workers, one fetch
            folder, sha, verb = _resolve_and_fill(uri, settings, cache, pinned)
    log.info("%s %s at %s (%s)", verb, uri.shown, uri.ref or "HEAD", sha[:12])
    return SourceTree(_subdir(folder, uri, sha))


def _resolve_and_fill(
    uri: SourceURI, settings: SourceSettings, cache: CodeCache, pinned: Optional[str]
) -> tuple[Path, str, str]:
    remote = _Remote(uri, settings)
    with remote.translated():
        sha = pinned or _resolve(uri.ref, _ref_table(remote.get_refs(b"").refs))
        folder = cache.find("git", sha)
        if folder:
            return folder, sha, "reused cached"
        with _scratch_repo(cache) as repo:
            remote.fetch_commit(repo, sha)
            store, limits = repo.object_store, settings.archive_limits
            folder = cache.tree("git", sha, lambda dest: _write_commit(store, sha, dest, limits))
        return folder, sha, "fetched"


def _ref_table(refs: Mapping[Ref, Optional[ObjectID]]) -> dict[str, str]:
    """Ref names to SHAs, as text (`refs/tags/v1^{}` is the commit an annotated tag points to)."""
    return {name.decode("utf-8", "replace"): sha.decode() for name, sha in refs.items() if sha}


def _resolve(ref: Optional[str], refs: dict[str, str]) -> str:
    """The SHA that HEAD, a branch, a tag, a full ref name or a unique tip prefix names."""
    names = ["HEAD"] if ref is None else [ref, f"refs/heads/{ref}", f"refs/tags/{ref}"]
    for name in names:
        if name in refs:
            return refs.get(f"{name}^{{}}", refs[name])  # an annotated tag: its commit
    if ref is None:
        raise _Failure("the repository has no HEAD (is it empty?)")
    abbreviated = _SHORT_SHA.fullmatch(ref.lower()) is not None
    matches = {sha for sha in refs.values() if abbreviated and sha.startswith(ref.lower())}
    if len(matches) == 1:
        return matches.pop()
    tips = [n.split("/", 2)[2] for n in sorted(refs) if n.startswith(("refs/heads/", "refs/tags/"))]
    listed = ", ".join(n for n in tips if not n.endswith("^{}")) or "none"
    message = f"no branch or tag {ref!r} (the repository has: {listed})"
    if abbreviated:
        message += "; as an abbreviated SHA it starts no single tip: give the full 40-hex SHA"
    raise _Failure(message)


def _write_commit(store: BaseObjectStore, sha: str, dest: Path, limits: ArchiveLimits) -> None:
    """Write the commit's whole tree under dest through SafeTree (the archive rules apply)."""
    tree = SafeTree(dest, limits)
    pending = [("", _object(store, sha.encode(), Commit).tree)]
    while pending:
        prefix, tree_sha = pending.pop()
        for entry in _object(store, tree_sha, Tree).iteritems():
            name = prefix + entry.path.decode("utf-8", "surrogateescape")
            tree.count(1)
            if entry.path.lower() == b".git":
                raise UnsafeArchiveError(f"tree entry {name!r}: git refuses to check out .git")
            if stat.S_ISDIR(entry.mode):
                tree.directory(name)
                pending.append((name + "/", entry.sha))
            elif entry.mode == _GITLINK:
                log.warning("git submodule %r skipped (submodules are not fetched)", name)
            elif stat.S_ISLNK(entry.mode):
                target = _object(store, entry.sha, Blob).data
                tree.symlink(name, target.decode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(entry.mode):
                data = io.BytesIO(_object(store, entry.sha, Blob).data)
                tree.write(name, data, executable=bool(entry.mode & 0o111))
            else:
                raise UnsafeArchiveError(f"tree entry {name!r} has unknown mode {entry.mode:o}")
    tree.finish()


def _object(store: BaseObjectStore, sha: bytes, kind: type[_T]) -> _T:
    """The object `sha` as a `kind` (annotated tags are peeled on the way to a commit)."""
    try:
        found = store[ObjectID(sha)]
        while isinstance(found, Tag):
            found = store[found.object[1]]
    except KeyError:
        raise _Failure(f"object {sha.decode()} is missing from what the server sent") from None
    if not isinstance(found, kind):
        wanted, got = kind.type_name.decode(), found.type_name.decode()
        raise _Failure(f"object {sha.decode()[:12]} is a {got}, not a {wanted}")
    return found


def _subdir(folder: Path, uri: SourceURI, sha: str) -> Path:
    if not uri.subdir:
        return folder
    parts = uri.subdir.split("/")
    root = folder.joinpath(*parts)
    if ".." in parts or not root.is_dir():
        top = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_dir())) or "none"
        raise SourceError(
            f"code_src {uri.shown!r}: no folder {uri.subdir!r} in commit {sha[:12]} "
            f"(its top-level folders: {top})"
        )
    return root


@contextlib.contextmanager
def _scratch_repo(cache: CodeCache) -> Iterator[Repo]:
    """An empty bare repository on the cache's file system (fetched packs go to disk)."""
    with cache.scratch_dir() as folder:
        repo = Repo.init_bare(folder)
        try:
            yield repo
        finally:
            repo.close()


class _Failure(Exception):
    """Why the fetch failed, without the `code_src ...:` prefix (added by `_Remote.translated`)."""


class _Remote(Urllib3HttpGitClient):
    """One conversation with the repository: dulwich's smart-HTTP client reading every response
    through a byte and time budget, refusing answers other than 200 with a git content type (a
    dumb server's included), its errors translated with the credentials hidden."""

    def __init__(self, uri: SourceURI, settings: SourceSettings) -> None:
        authorization, self.secrets = _credentials(uri, settings)
        self.deadline = Deadline(settings.limits.total_timeout)
        try:
            self.scope = _Scope(uri.location, authorization, settings)
            self.pool = _scoped_pool(uri.location, self.scope, settings)
        except ValueError as exc:  # a proxy or CA bundle variable that cannot be used
            self.deadline.cancel()
            raise SourceError(f"code_src {uri.shown!r}: {exc}") from None
        self.pool.pool_classes_by_scheme = _watched_pools(self.deadline)
        super().__init__(uri.location, pool_manager=self.pool)
        self.uri, self.settings, self.left = uri, settings, settings.limits.max_download_bytes

    def fetch_commit(self, repo: Repo, sha: str) -> None:
        """Fetch the one commit `sha` (depth 1) into repo.

        Protocol v2 servers, and v0 ones over HTTP, serve any commit reachable from a branch or
        tag; a stricter server refuses a commit that is not a tip. Then all branches and tags are
        fetched in full (still within max_download_bytes) and the commit looked up.
        """
        want = ObjectID(sha.encode())
        try:
            self._fetch_checked(repo, lambda refs, depth=None: [want], depth=1)
        except GitProtocolError:
            self._fetch_checked(repo, _branches_and_tags)
        if want not in repo.object_store:
            raise _Failure(f"commit {sha} is not on any branch or tag of the repository")

    def _fetch_checked(self, repo: Repo, wants: Callable[..., list[ObjectID]], **kw: Any) -> None:
        """Fetch a pack to a file, check what it unpacks to (`check_pack`), then add it: dulwich
        inflates each object whole while adding, so nothing oversized may reach it."""
        with tempfile.TemporaryFile(dir=repo.object_store.path, prefix="incoming-") as pack:
            result = self.fetch_pack(b"", wants, repo.get_graph_walker(), pack.write, **kw)
            if pack.tell():
                pack.seek(0)
                check_pack(pack, self.settings.archive_limits.max_unpacked_bytes)
                pack.seek(0)
                repo.object_store.add_thin_pack(pack.read, None)
        repo.update_shallow(result.new_shallow, result.new_unshallow)

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Prefix our failures, and turn dulwich, urllib3 and socket errors into a SourceError
        with a short reason, the credentials hidden."""
        try:
            yield
            return
        except UnsafeArchiveError as exc:
            raise UnsafeArchiveError(f"code_src {self.uri.shown!r}: {exc.message}") from None
        except SourceError:
            raise
        except _Failure as exc:
            reason = str(exc)
        except (GitProtocolError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            reason = _reason(exc, self.settings.limits)
            if self.deadline.expired:  # the watchdog shut the socket under a read
                reason = self._late()
        finally:
            self.deadline.cancel()
        for secret in self.secrets:
            reason = reason.replace(secret, "***")
        raise SourceError(f"code_src {self.uri.shown!r}: {reason}") from None

    def _http_request(
        self,
        url: str,
        headers: Optional[dict[str, str]] = None,
        data: Optional[bytes | Iterator[bytes]] = None,
        raise_for_status: bool = True,
    ) -> tuple[HTTPResponse, Callable[[int], bytes]]:
        self._check_time()
        resp, read = super()._http_request(url, headers, data, raise_for_status=False)
        if resp.status != 200 or not (resp.content_type or "").startswith("application/x-git-"):
            resp.close()
            if resp.status != 200:
                raise _Failure(self._refusal(resp.status))
            raise _Failure("the server does not speak git's smart HTTP protocol")
        return resp, self._counted(read)

    def _counted(self, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
        def bounded(size: int) -> bytes:
            data = read(size)
            self.left -= len(data)
            if self.left < 0:
                limit = self.settings.limits.max_download_bytes
                raise _Failure(f"download larger than max_download_bytes={limit}")
            self._check_time()
            return data

        return bounded

    def _check_time(self) -> None:
        if self.deadline.expired:
            raise _Failure(self._late())

    def _late(self) -> str:
        return f"the fetch took longer than total_timeout={self.settings.limits.total_timeout:g} s"

    def _refusal(self, status: int) -> str:
        what = {401: "access denied", 403: "access denied", 404: "repository not found"}
        if status not in what:
            return f"the server answered HTTP {status}"
        text = f"{what[status]} (HTTP {status})"
        (_, origin), sent = self.scope.last
        if sent:
            return f"{text} with the credentials given"
        if self.scope.authorization:
            return f"{text} at {origin}, where the server redirected (credentials not sent)"
        text += "; if the repository is private, " if status == 404 else ": "
        if self.settings.git_credentials:
            return f"{text}the git credentials were not sent: {origin} is not in {_SCOPE}"
        return f"{text}no credentials were sent (set GIT_TOKEN and {_SCOPE})"


def _branches_and_tags(refs: Mapping[Ref, ObjectID], depth: Optional[int] = None) -> list[ObjectID]:
    return [sha for name, sha in refs.items() if name.startswith((b"refs/heads/", b"refs/tags/"))]


def _credentials(uri: SourceURI, settings: SourceSettings) -> tuple[Optional[str], list[str]]:
    """The Authorization header for the repository's own origin, and the strings to hide."""
    configured = settings.git_credentials
    if uri.username is not None or uri.password is not None:  # only ever sent to this URI
        user, secret = uri.username or "", uri.password or ""
        hidden = [user, secret]
    elif configured is not None and configured.allowed_for(uri.location):
        user, secret, hidden = configured.username, configured.password, [configured.password]
    else:
        return None, []
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return f"Basic {token}", [text for text in (*hidden, token) if text]


def _cause(exc: BaseException, kind: type[_E]) -> Optional[_E]:
    """`exc` or the first error of type `kind` in its causes: urllib3 wraps ssl's errors, as
    a cause, a `reason`, or (urllib3 1.26) its first argument."""
    seen: Optional[BaseException] = exc
    for _ in range(10):  # a chain is short; a cycle must not loop forever
        if seen is None or isinstance(seen, kind):
            break
        first = seen.args[0] if seen.args else None
        wrapped = [seen.__cause__, seen.__context__, getattr(seen, "reason", None), first]
        seen = next((e for e in wrapped if isinstance(e, BaseException)), None)
    return seen if isinstance(seen, kind) else None


def _reason(exc: Exception, limits: FetchLimits) -> str:
    """A short reason for a network or protocol error (dulwich wraps urllib3's errors)."""
    if isinstance(exc.__cause__, urllib3.exceptions.HTTPError):
        exc = exc.__cause__
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    untrusted = _cause(exc, ssl.SSLCertVerificationError)
    if untrusted is not None:
        return (
            f"TLS certificate not trusted ({untrusted.verify_message}; see SSL_CERT_FILE, "
            "REQUESTS_CA_BUNDLE or GIT_SSL_CAINFO)"
        )
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"cannot connect: {str(exc).rpartition(': ')[2]}"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within connect_timeout={limits.connect_timeout:g} s"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"the server sent nothing for read_timeout={limits.read_timeout:g} s"
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return f"more than max_redirects={limits.max_redirects} redirects"
    return f"{type(exc).__name__}: {exc}"


class _Scope:
    """What a pool needs to scope credentials: the repository's origin and its Authorization,
    whether plain http is allowed, and what the latest request was (origin, credentials sent)."""

    def __init__(self, location: str, authorization: Optional[str], settings: SourceSettings):
        self.origin, self.authorization = _origin(location), authorization
        self.allow_http = settings.allow_git_http
        self.last: tuple[_Origin, bool] = (self.origin, False)


class _Scoped:
    """Sends Authorization only to the repository's origin (redirects included), bounds time and
    redirects, and refuses plain http (a redirect included) unless git over http is allowed."""

    scope: _Scope
    retry: urllib3.Retry

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        origin, scope = _origin(url), self.scope
        if origin[0] != "https" and not scope.allow_http:
            raise _Failure(f"redirected to plain http ({origin[1]}); refused")
        headers = kw.get("headers") or self.headers  # type: ignore[attr-defined]
        kw["headers"] = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        sent = scope.authorization is not None and origin == scope.origin
        if sent:
            kw["headers"]["Authorization"] = scope.authorization
        scope.last = (origin, sent)
        kw.setdefault("retries", self.retry)  # urllib3 1.26 ignores a pool-wide default
        return super().urlopen(method, url, redirect=redirect, **kw)  # type: ignore[misc]


class _ScopedPool(_Scoped, urllib3.PoolManager):  # type: ignore[misc]
    pass


class _ScopedProxy(_Scoped, urllib3.ProxyManager):  # type: ignore[misc]
    pass


def _scoped_pool(
    location: str, scope: _Scope, settings: SourceSettings
) -> _ScopedPool | _ScopedProxy:
    """The pool the conversation goes through: direct, or through the proxy the usual
    variables name for the repository (credentials in the proxy URL go to the proxy only)."""
    limits = settings.limits
    options: dict[str, Any] = {
        "headers": {"User-Agent": default_user_agent_string()},
        "timeout": urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
        "ssl_context": _for_urllib3(tls_context("GIT_SSL_CAINFO")),
    }
    proxy = proxy_for(location)
    pool: _ScopedPool | _ScopedProxy
    if proxy is None:
        pool = _ScopedPool(**options)
    else:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=pair)
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        pool = _ScopedProxy(bare, **options)
    hops = limits.max_redirects
    pool.retry = urllib3.Retry(total=hops + 2, connect=2, read=1, other=0, redirect=hops)
    pool.scope = scope
    return pool


def _for_urllib3(context: ssl.SSLContext) -> ssl.SSLContext:
    """`context` with the host name left to urllib3, which matches it itself (IP addresses
    too) when the context does not: urllib3 1.26 sends no server name for an IP address, which
    a context checking host names refuses."""
    context.check_hostname = False
    return context


def _watched_pools(deadline: Deadline) -> dict[str, type[urllib3.HTTPConnectionPool]]:
    """Connection pools whose sockets the deadline's watchdog shuts, so a server dripping its
    answer cannot hold the fetch past total_timeout (the read timeout bounds one wait only)."""

    def watched(base: type[urllib3.connection.HTTPConnection]) -> Any:
        class Watched(base):  # type: ignore[valid-type, misc]
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        return Watched

    class Plain(urllib3.HTTPConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPConnection)

    class TLS(urllib3.HTTPSConnectionPool):
        ConnectionCls = watched(urllib3.connection.HTTPSConnection)

    return {"http": Plain, "https": TLS}


def _origin(url: str) -> _Origin:
    return urlsplit(url).scheme.lower(), origin_of(url)

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
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar
from urllib.parse import urlsplit

import urllib3
from dulwich.client import Urllib3HttpGitClient, default_user_agent_string
from dulwich.errors import GitProtocolError
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree
from dulwich.repo import Repo

from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.sources import SourceTree
from wrapper.sources.archive import SafeTree
from wrapper.sources.cache import CodeCache
from wrapper.sources.settings import ArchiveLimits, FetchLimits, SourceSettings, origin_of
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
        self.pool = _ScopedPool(uri.location, authorization, settings)
        super().__init__(uri.location, pool_manager=self.pool)
        self.uri, self.settings, self.left = uri, settings, settings.limits.max_download_bytes
        self.deadline = time.monotonic() + settings.limits.total_timeout

    def fetch_commit(self, repo: Repo, sha: str) -> None:
        """Fetch the one commit `sha` (depth 1) into repo.

        Protocol v2 servers, and v0 ones over HTTP, serve any commit reachable from a branch or
        tag; a stricter server refuses a commit that is not a tip. Then all branches and tags are
        fetched in full (still within max_download_bytes) and the commit looked up.
        """
        want = ObjectID(sha.encode())
        try:
            self.fetch(b"", repo, determine_wants=lambda refs, depth=None: [want], depth=1)
        except GitProtocolError:
            self.fetch(b"", repo, determine_wants=_branches_and_tags)
        if want not in repo.object_store:
            raise _Failure(f"commit {sha} is not on any branch or tag of the repository")

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
        if time.monotonic() > self.deadline:
            limit = self.settings.limits.total_timeout
            raise _Failure(f"the fetch took longer than total_timeout={limit:g} s")

    def _refusal(self, status: int) -> str:
        what = {401: "access denied", 403: "access denied", 404: "repository not found"}
        if status not in what:
            return f"the server answered HTTP {status}"
        text = f"{what[status]} (HTTP {status})"
        (_, origin), sent = self.pool.last
        if sent:
            return f"{text} with the credentials given"
        if self.pool.authorization:
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


def _reason(exc: Exception, limits: FetchLimits) -> str:
    """A short reason for a network or protocol error (dulwich wraps urllib3's errors)."""
    if isinstance(exc.__cause__, urllib3.exceptions.HTTPError):
        exc = exc.__cause__
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"cannot connect: {str(exc).rpartition(': ')[2]}"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within connect_timeout={limits.connect_timeout:g} s"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"the server sent nothing for read_timeout={limits.read_timeout:g} s"
    if isinstance(exc, urllib3.exceptions.ResponseError):
        return f"more than max_redirects={limits.max_redirects} redirects"
    return f"{type(exc).__name__}: {exc}"


class _ScopedPool(urllib3.PoolManager):
    """Sends Authorization only to the repository's origin (redirects included), bounds time and
    redirects, and refuses plain http (a redirect included) unless git over http is allowed."""

    def __init__(
        self, location: str, authorization: Optional[str], settings: SourceSettings
    ) -> None:
        limits = settings.limits
        super().__init__(
            headers={"User-Agent": default_user_agent_string()},
            timeout=urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
        )
        hops = limits.max_redirects
        self.retry = urllib3.Retry(total=hops + 2, connect=2, read=1, other=0, redirect=hops)
        self.origin, self.authorization = _origin(location), authorization
        self.allow_http = settings.allow_git_http
        self.last: tuple[_Origin, bool] = (self.origin, False)  # latest request: origin, sent?

    def urlopen(  # type: ignore[override]  # as urllib3's own PoolManager.urlopen
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        origin = _origin(url)
        if origin[0] != "https" and not self.allow_http:
            raise _Failure(f"redirected to plain http ({origin[1]}); refused")
        headers = kw.get("headers") or self.headers
        kw["headers"] = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        sent = self.authorization is not None and origin == self.origin
        if sent:
            kw["headers"]["Authorization"] = self.authorization
        self.last = (origin, sent)
        kw.setdefault("retries", self.retry)  # urllib3 1.26 ignores a pool-wide default
        return super().urlopen(method, url, redirect=redirect, **kw)


def _origin(url: str) -> _Origin:
    return urlsplit(url).scheme.lower(), origin_of(url)

"""Tests for wrapper.sources.git against real repositories served by `git http-backend`."""

from __future__ import annotations

import base64
import logging
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import trustme

from tests.raw_http import Behaviour, Proxy, RawServer, drip_headers, request_of
from wrapper.errors import SourceError, UnsafeArchiveError
from wrapper.loader import load_code
from wrapper.sources import SourceTree, materialise_source
from wrapper.sources.archive import ArchiveLimits
from wrapper.sources.git import materialise_git
from wrapper.sources.settings import Credentials, FetchLimits, SourceSettings
from wrapper.sources.uri import parse_source_uri

BACKEND = Path("/usr/lib/git-core/git-http-backend")
TOKEN = "tok-7f3a9c-do-not-leak-5e21"
USER = "alice"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
WANT = re.compile(rb"want ([0-9a-f]{40})")

pytestmark = pytest.mark.skipif(not BACKEND.exists(), reason="git http-backend is not installed")


def git(*args: str, cwd: Path, stdin: str = "") -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# --- a smart-HTTP git server: git http-backend as a CGI behind a threaded WSGI server ------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def wants(self) -> bool:
        """A fetch (not a ref listing): the body names the objects wanted."""
        return bool(WANT.search(self.body))


@dataclass
class GitServer:
    """Serves the bare repositories under `root`; paths under /private/ need basic auth.

    `redirect_to` turns it into a redirector (same path, other base URL); `strict` refuses
    wants that are not a branch or tag tip, as a server without any SHA-in-want support does;
    `protocol_v2=False` keeps it to protocol v0; `dumb` serves plain files; `delay` stalls;
    `tls` serves https.
    """

    root: Path
    host: str = "127.0.0.1"
    redirect_to: Optional[str] = None
    protocol_v2: bool = True
    strict: bool = False
    dumb: bool = False
    delay: float = 0.0
    tls: Optional[ssl.SSLContext] = None
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> GitServer:
        self.httpd = make_server(
            self.host, 0, self.app, server_class=_ThreadedServer, handler_class=_Quiet
        )
        if self.tls:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, scheme: str = "git+http", host: str = "") -> str:
        return f"{scheme}://{host or self.host}:{self.port}/{path}"

    @property
    def fetches(self) -> int:
        return sum(r.wants for r in self.requests)

    def authorized(self) -> list[bool]:
        return ["Authorization" in r.headers for r in self.requests]

    def app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        self.requests.append(Request(environ["REQUEST_METHOD"], path, headers, body))
        time.sleep(self.delay)
        if self.redirect_to:
            location = self.redirect_to + path + (f"?{query}" if query else "")
            start("302 Found", [("Location", location), ("Content-Length", "0")])
            return [b""]
        user = ""
        if path.startswith("/private/"):
            user = _basic_user(headers.get("Authorization", ""))
            if not user:
                start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
                return [b"authentication required\n"]
        if self.dumb:
            file = self.root / path.lstrip("/")
            start("200 OK", [("Content-Type", "text/plain")])
            return [file.read_bytes() if file.is_file() else b""]
        refused = self._refused_want(path, body)
        if refused:
            start("200 OK", [("Content-Type", "application/x-git-upload-pack-result")])
            message = f"ERR upload-pack: not our ref {refused}\n".encode()
            return [b"%04x%s" % (len(message) + 4, message)]
        return self._backend(environ, path, query, body, user, start)

    def _refused_want(self, path: str, body: bytes) -> Optional[str]:
        if not (self.strict and path.endswith("/git-upload-pack")):
            return None
        repo = self.root / path.lstrip("/").rsplit("/", 1)[0]
        tips = set(git("for-each-ref", "--format=%(objectname)", cwd=repo).split())
        wanted = {m.decode() for m in WANT.findall(body)}
        return next(iter(wanted - tips), None)

    def _backend(
        self,
        environ: dict[str, Any],
        path: str,
        query: str,
        body: bytes,
        user: str,
        start: Callable[..., Any],
    ) -> Iterable[bytes]:
        env = {
            **GIT_ENV,
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
        }
        if self.protocol_v2 and "HTTP_GIT_PROTOCOL" in environ:
            env["HTTP_GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        out = subprocess.run([str(BACKEND)], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, reply = "200 OK", []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = value
            elif name:
                reply.append((name, value))
        start(status, reply)
        return [rest]


def _basic_user(header: str) -> str:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    name, _, secret = base64.b64decode(value).decode().partition(":")
    return name if (name, secret) == (USER, TOKEN) else ""


# --- repositories --------------------------------------------------------------------------------


@dataclass
class Origin:
    root: Path
    shas: dict[str, str]

    def bare(self, name: str) -> Path:
        """A fresh copy of repo.git a test may change, served as `<name>.git`."""
        target = self.root / f"{name}.git"
        git("clone", "-q", "--bare", str(self.root / "repo.git"), str(target), cwd=self.root)
        return target


FILES_A = {
    "README.md": "# demo\n",
    "main.py": "def handler():\n    return 'A'\n",
}
FILES_B = {
    "main.py": "def handler():\n    return 'B'\n",
    "tool.sh": "#!/bin/sh\necho tool\n",
    "src/gitfn_pkg/__init__.py": "",
    "src/gitfn_pkg/handler.py": "from .util import greet\n\n\ndef handler():\n    return greet()\n",
    "src/gitfn_pkg/util.py": "def greet():\n    return 'hello from a package'\n",
}


def _commit(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
        (work / name).chmod(0o755 if name.endswith(".sh") else 0o644)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    """repo.git: A (tag `light`) - B (annotated tag `v1`) - B2 - C (main); `dev` off C;
    private/repo.git: a copy; big.git: an incompressible blob; evil.git: hostile trees."""
    base = tmp_path_factory.mktemp("git")
    root, work = base / "root", base / "work"
    root.mkdir()
    git("init", "-q", "-b", "main", str(work), cwd=base)
    shas = {"A": _commit(work, FILES_A, "A")}
    git("tag", "light", cwd=work)
    (work / "docs").mkdir()
    (work / "docs" / "readme.md").symlink_to("../README.md")
    shas["B"] = _commit(work, FILES_B, "B")
    git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    shas["B2"] = _commit(work, {"main.py": "def handler():\n    return 'B2'\n"}, "B2")
    shas["C"] = _commit(work, {"main.py": "def handler():\n    return 'C'\n"}, "C")
    git("checkout", "-q", "-b", "dev", cwd=work)
    shas["dev"] = _commit(work, {"main.py": "def handler():\n    return 'dev'\n"}, "dev")
    git("checkout", "-q", "main", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=base)
    (root / "private").mkdir()
    git("clone", "-q", "--bare", str(work), str(root / "private" / "repo.git"), cwd=base)
    _big_repo(root / "big.git")
    git("init", "-q", "--bare", str(root / "empty.git"), cwd=root)
    shas.update(_evil_repo(root / "evil.git"))
    return Origin(root, shas)


def _big_repo(path: Path) -> None:
    git("init", "-q", "--bare", "-b", "main", str(path), cwd=path.parent)
    blob = git("hash-object", "-w", "--stdin", cwd=path, stdin=os.urandom(150_000).hex())
    _plumb_commit(path, "main", [f"100644 blob {blob}\tdata.txt"])


def _evil_repo(path: Path) -> dict[str, str]:
    """Branches whose trees git itself would never write: made with git's plumbing."""
    git("init", "-q", "--bare", "-b", "main", str(path), cwd=path.parent)
    blob = git("hash-object", "-w", "--stdin", cwd=path, stdin="escaped\n")
    outside = git("hash-object", "-w", "--stdin", cwd=path, stdin="../../../../outside")
    inner = git("mktree", cwd=path, stdin=f"100644 blob {blob}\tescaped.txt\n")
    ok = f"100644 blob {blob}\tok.txt"
    dangling_tree = git("mktree", cwd=path, stdin=ok + "\n")
    return {
        "dotdot": _plumb_commit(path, "dotdot", [ok, f"040000 tree {inner}\t.."]),
        "escape": _plumb_commit(path, "escape", [ok, f"120000 blob {outside}\tevil"]),
        "dotgit": _plumb_commit(path, "dotgit", [ok, f"040000 tree {inner}\t.git"]),
        "submodule": _plumb_commit(path, "submodule", [ok, f"160000 commit {'1' * 40}\tvendor"]),
        "dangling": git("commit-tree", dangling_tree, "-m", "unreachable", cwd=path),
    }


def _plumb_commit(repo: Path, branch: str, entries: list[str]) -> str:
    tree = git("mktree", "--missing", cwd=repo, stdin="\n".join(entries) + "\n")
    commit = git("commit-tree", tree, "-m", branch, cwd=repo)
    git("update-ref", f"refs/heads/{branch}", commit, cwd=repo)
    return commit


@pytest.fixture(scope="module")
def shared_server(origin: Origin) -> Iterator[GitServer]:
    with GitServer(origin.root) as server:
        yield server


@pytest.fixture
def server(shared_server: GitServer) -> GitServer:
    """The module's server, with a fresh request log and default behaviour."""
    shared_server.requests.clear()
    shared_server.protocol_v2, shared_server.strict = True, False
    return shared_server


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def settings(cache: Path, **kw: Any) -> SourceSettings:
    kw.setdefault("allow_git_http", True)
    return SourceSettings(cache_dir=cache, **kw)


def fetch(url: str, cache: Path, **kw: Any) -> SourceTree:
    return materialise_git(parse_source_uri(url), settings(cache, **kw))


def main_py(tree: SourceTree) -> str:
    return (tree.root / "main.py").read_text()


# --- refs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("", "C"),
        ("#main", "C"),
        ("#dev", "dev"),
        ("#refs/heads/dev", "dev"),
        ("#v1", "B"),  # annotated tag: peeled to its commit
        ("#light", "A"),  # lightweight tag
        ("#sha:B", "B"),
        ("#upper:B", "B"),  # a SHA in capitals
        ("#sha:B2", "B2"),  # on no branch tip: fetched by SHA all the same
        ("#short:dev", "dev"),  # an abbreviated SHA of a branch tip
    ],
)
def test_ref_selects_the_commit(
    origin: Origin, server: GitServer, cache: Path, fragment: str, expected: str
) -> None:
    kind, _, name = fragment.partition(":")
    if kind == "#sha":
        fragment = "#" + origin.shas[name]
    elif kind == "#upper":
        fragment = "#" + origin.shas[name].upper()
    elif kind == "#short":
        fragment = "#" + origin.shas[name][:10]
    tree = fetch(server.url("repo.git") + fragment, cache)
    assert main_py(tree) == f"def handler():\n    return {expected!r}\n"
    assert server.fetches == 1


def test_files_keep_content_exec_bit_and_links(
    origin: Origin, server: GitServer, cache: Path
) -> None:
    root = fetch(server.url("repo.git#v1"), cache).root
    assert (root / "tool.sh").read_text() == "#!/bin/sh\necho tool\n"
    assert os.access(root / "tool.sh", os.X_OK)
    assert not os.access(root / "main.py", os.X_OK)
    link = root / "docs" / "readme.md"
    assert link.is_symlink() and os.readlink(link) == "../README.md"
    assert link.read_text() == "# demo\n"
    assert not (root / ".git").exists()
    assert root.name == origin.shas["B"]  # the cache key is the commit


def test_subdir_is_the_root_and_its_package_imports(
    server: GitServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    source = SimpleNamespace(code=None, base64=None, code_src=server.url("repo.git#main:src"))
    tree = materialise_source(source, settings(cache))
    assert tree.root.name == "src" and (tree.root.parent / "main.py").exists()
    try:
        loaded = load_code(tree, "gitfn_pkg.handler:handler")
        assert loaded.handler() == "hello from a package"
    finally:
        for name in [m for m in sys.modules if m.startswith("gitfn_pkg")]:
            del sys.modules[name]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nowhere.git", "repository not found (HTTP 404)"),
        ("repo.git#no-such-branch", "no branch or tag 'no-such-branch' (the repository has: "),
        ("repo.git#main:nope", "no folder 'nope' in commit"),
        ("repo.git#main:main.py", "its top-level folders: docs, src"),
        ("repo.git#1234567", "starts no single tip: give the full 40-hex SHA"),
        ("empty.git", "the repository has no HEAD (is it empty?)"),
        ("empty.git#main", "no branch or tag 'main' (the repository has: none)"),
        ("repo.git#" + "1" * 40, f"commit {'1' * 40} is not on any branch or tag"),
    ],
)
def test_missing_things_are_clear_errors(
    server: GitServer, cache: Path, url: str, message: str
) -> None:
    with pytest.raises(SourceError) as caught:
        fetch(server.url(url), cache)
    assert message in caught.value.message
    assert caught.value.message.startswith(f"code_src '{server.url(url)}': ")


def test_missing_branch_lists_what_exists(server: GitServer, cache: Path) -> None:
    with pytest.raises(SourceError, match=r"has: dev, main, light, v1\)"):
        fetch(server.url("repo.git#nope"), cache)


def test_plain_http_needs_the_flag(server: GitServer, cache: Path) -> None:
    with pytest.raises(SourceError, match="--allow-git-http / FN_WRAPPER_ALLOW_GIT_HTTP"):
        fetch(server.url("repo.git"), cache, allow_git_http=False)
    assert server.requests == []


def test_a_dumb_server_is_refused(origin: Origin, cache: Path) -> None:
    git("update-server-info", cwd=origin.root / "repo.git")
    with GitServer(origin.root, dumb=True) as dumb, pytest.raises(SourceError) as caught:
        fetch(dumb.url("repo.git"), cache)
    assert "does not speak git's smart HTTP protocol" in caught.value.message


# --- fetching what is needed, caching, revalidating ----------------------------------------------


def test_a_sha_outside_branch_tips_on_a_strict_server_falls_back_to_a_full_fetch(
    origin: Origin, server: GitServer, cache: Path
) -> None:
    server.protocol_v2, server.strict = False, True
    tree = fetch(server.url("repo.git#" + origin.shas["B2"]), cache)
    assert main_py(tree) == "def handler():\n    return 'B2'\n"
    assert server.fetches == 2  # the refused depth-1 want, then every branch and tag


def test_a_sha_on_no_branch_is_refused_after_the_full_fetch(
    origin: Origin, server: GitServer, cache: Path
) -> None:
    server.protocol_v2, server.strict = False, True
    dangling = origin.shas["dangling"]
    with pytest.raises(SourceError, match=f"commit {dangling} is not on any branch or tag"):
        fetch(server.url("evil.git#" + dangling), cache)


def test_a_cached_sha_needs_no_network(
    origin: Origin, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wrapper.sources")
    with GitServer(origin.root) as server:
        url = server.url("repo.git#" + origin.shas["B"])
        first = fetch(url, cache)
    again = fetch(url, cache)  # the server is gone
    assert again == first and main_py(again) == "def handler():\n    return 'B'\n"
    lines = [r.getMessage() for r in caplog.records if r.name == "wrapper.sources"]
    sha12 = origin.shas["B"][:12]
    assert lines == [
        f"fetched {url} at {origin.shas['B']} ({sha12})",
        f"reused cached {url} at {origin.shas['B']} ({sha12})",
    ]


def test_a_branch_is_revalidated_at_each_start(
    origin: Origin, server: GitServer, cache: Path
) -> None:
    origin.bare("moving")
    url = server.url("moving.git#main")
    first, same = fetch(url, cache), fetch(url, cache)
    assert same == first and server.fetches == 1  # unchanged: resolved, not fetched again
    work = origin.root.parent / "moving-work"
    git("clone", "-q", str(origin.root / "moving.git"), str(work), cwd=origin.root)
    _commit(work, {"main.py": "def handler():\n    return 'D'\n"}, "D")
    git("push", "-q", "origin", "main", cwd=work)
    moved = fetch(url, cache)
    assert moved.root != first.root and main_py(moved) == "def handler():\n    return 'D'\n"
    assert main_py(first) == "def handler():\n    return 'C'\n"  # the old tree stays whole
    assert server.fetches == 2


def test_concurrent_starts_fetch_once(server: GitServer, cache: Path) -> None:
    results: list[Any] = []

    def start() -> None:
        try:
            results.append(fetch(server.url("repo.git#dev"), cache).root)
        except Exception as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(results)) == 1 and isinstance(results[0], Path), results
    assert server.fetches == 1


def test_concurrent_processes_fetch_once(server: GitServer, cache: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from wrapper.sources.git import materialise_git; "
        "from wrapper.sources.settings import SourceSettings; "
        "from wrapper.sources.uri import parse_source_uri; "
        "print(materialise_git(parse_source_uri(sys.argv[1]), "
        "SourceSettings(cache_dir=Path(sys.argv[2]), allow_git_http=True)).root)"
    )
    args = [sys.executable, "-c", script, server.url("repo.git#v1"), str(cache)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    roots = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(roots) == 1 and server.fetches == 1


# --- limits and hostile trees --------------------------------------------------------------------


def test_a_pack_over_max_download_bytes_is_refused(server: GitServer, cache: Path) -> None:
    limits = FetchLimits(max_download_bytes=100_000)
    with pytest.raises(SourceError, match="download larger than max_download_bytes=100000"):
        fetch(server.url("big.git"), cache, limits=limits)
    assert list(cache.glob("git/[0-9a-f]*")) == []  # nothing cached
    assert list(cache.glob(".fetch-*")) == []  # the scratch repository is gone


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ArchiveLimits(max_members=5), "more than max_members=5"),
        (ArchiveLimits(max_unpacked_bytes=100), "more than max_unpacked_bytes=100"),
    ],
)
def test_archive_limits_apply_to_the_tree(
    server: GitServer, cache: Path, limits: ArchiveLimits, message: str
) -> None:
    with pytest.raises(UnsafeArchiveError, match=message):
        fetch(server.url("repo.git"), cache, archive_limits=limits)


def test_slow_server_hits_total_timeout(origin: Origin, cache: Path) -> None:
    limits = FetchLimits(total_timeout=0.5)
    with GitServer(origin.root, delay=0.3) as slow, pytest.raises(SourceError) as caught:
        fetch(slow.url("repo.git"), cache, limits=limits)
    assert "the fetch took longer than total_timeout=0.5 s" in caught.value.message


def test_stalled_server_hits_read_timeout(origin: Origin, cache: Path) -> None:
    limits = FetchLimits(read_timeout=0.2)
    with GitServer(origin.root, delay=1.0) as stalled, pytest.raises(SourceError) as caught:
        fetch(stalled.url("repo.git"), cache, limits=limits)
    assert "the server sent nothing for read_timeout=0.2 s" in caught.value.message


@pytest.mark.parametrize(
    ("branch", "message"),
    [
        ("dotdot", "archive member '..' escapes the target directory"),
        ("escape", "archive member 'evil' links outside the target directory"),
        ("dotgit", "tree entry '.git': git refuses to check out .git"),
    ],
)
def test_hostile_trees_are_refused(
    origin: Origin, server: GitServer, tmp_path: Path, branch: str, message: str
) -> None:
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(UnsafeArchiveError, match=re.escape(message)):
        fetch(server.url(f"evil.git#{branch}"), cache)
    assert [p for p in tmp_path.rglob("*") if p.name in ("escaped.txt", "evil", "outside")] == []
    assert not (cache / "git" / origin.shas[branch]).exists()


def test_submodules_are_skipped_with_a_warning(
    server: GitServer, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = fetch(server.url("evil.git#submodule"), cache).root
    assert sorted(p.name for p in root.iterdir()) == ["ok.txt"]
    assert "submodule 'vendor' skipped" in caplog.text


# --- credentials ---------------------------------------------------------------------------------


def creds(*hosts: str, password: str = TOKEN) -> Credentials:
    return Credentials(USER, password, hosts)


def test_private_repo_with_scoped_credentials(server: GitServer, cache: Path) -> None:
    scoped = creds(f"127.0.0.1:{server.port}")
    tree = fetch(server.url("private/repo.git#dev"), cache, git_credentials=scoped)
    assert main_py(tree) == "def handler():\n    return 'dev'\n"
    assert server.authorized() and all(server.authorized())


def test_credentials_for_another_host_are_not_sent(server: GitServer, cache: Path) -> None:
    elsewhere = creds("git.example.com", f"localhost:{server.port}")
    with pytest.raises(SourceError) as caught:
        fetch(server.url("private/repo.git"), cache, git_credentials=elsewhere)
    assert "access denied (HTTP 401)" in caught.value.message
    assert f"127.0.0.1:{server.port} is not in FN_WRAPPER_GIT_CREDENTIAL_HOSTS" in str(caught.value)
    assert server.authorized() == [False]


def test_no_credentials_at_all(server: GitServer, cache: Path) -> None:
    with pytest.raises(SourceError, match=r"no credentials were sent \(set GIT_TOKEN and FN_WR"):
        fetch(server.url("private/repo.git"), cache)


def test_wrong_credentials(server: GitServer, cache: Path) -> None:
    wrong = creds(f"127.0.0.1:{server.port}", password="nope")
    with pytest.raises(SourceError, match=r"access denied \(HTTP 401\) with the credentials given"):
        fetch(server.url("private/repo.git"), cache, git_credentials=wrong)


def test_credentials_in_the_uri(server: GitServer, cache: Path) -> None:
    url = server.url("private/repo.git#v1").replace("://", f"://{USER}:{TOKEN}@")
    assert main_py(fetch(url, cache)) == "def handler():\n    return 'B'\n"
    assert all(server.authorized())


@pytest.mark.parametrize("where", ["uri", "settings"])
def test_a_redirect_to_another_host_carries_no_credentials(
    server: GitServer, cache: Path, where: str
) -> None:
    """127.0.0.1:<redirector> sends every request on to localhost:<git server>."""
    with GitServer(server.root, redirect_to=f"http://localhost:{server.port}") as redirector:
        url = redirector.url("private/repo.git")
        scoped = creds(f"127.0.0.1:{redirector.port}")
        if where == "uri":
            url, scoped = url.replace("://", f"://{USER}:{TOKEN}@"), creds("nowhere.example")
        with pytest.raises(SourceError) as caught:
            fetch(url, cache, git_credentials=scoped)
        assert redirector.authorized() == [True]  # the host the credentials belong to
    assert server.requests and server.authorized() == [False] * len(server.requests)
    assert f"at localhost:{server.port}, where the server redirected" in caught.value.message


def test_a_public_repo_behind_a_redirect(server: GitServer, cache: Path) -> None:
    with GitServer(server.root, redirect_to=f"http://localhost:{server.port}") as redirector:
        assert main_py(fetch(redirector.url("repo.git#dev"), cache)) == (
            "def handler():\n    return 'dev'\n"
        )
    assert server.fetches == 1


def test_redirect_loops_stop_at_max_redirects(origin: Origin, cache: Path) -> None:
    with GitServer(origin.root) as loop:
        loop.redirect_to = f"http://127.0.0.1:{loop.port}/again"
        with pytest.raises(SourceError, match="more than max_redirects=2 redirects"):
            fetch(loop.url("repo.git"), cache, limits=FetchLimits(max_redirects=2))


def test_no_secret_in_logs_output_or_errors(
    server: GitServer,
    cache: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "dulwich", "wrapper"):
        caplog.set_level(logging.DEBUG, logger=name)
    header = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    scoped = creds(f"127.0.0.1:{server.port}")
    embedded = server.url("private/repo.git").replace("://", f"://{USER}:{TOKEN}@")
    fetch(server.url("private/repo.git#dev"), cache, git_credentials=scoped)
    fetch(embedded + "#main", cache)
    failures: list[SourceError] = []
    attempts = [
        (server.url("private/repo.git"), creds(f"127.0.0.1:{server.port}", password=TOKEN + "x")),
        (server.url("private/repo.git"), creds("elsewhere.example")),
        (server.url("private/missing.git"), scoped),
        (embedded.replace("repo.git", "missing.git"), None),
        (embedded.replace(TOKEN, TOKEN + "x"), None),
    ]
    for url, given in attempts:
        with pytest.raises(SourceError) as caught:
            fetch(url, cache, git_credentials=given)
        failures.append(caught.value)
    out, err = capfd.readouterr()
    texts = [out, err, caplog.text, *(r.getMessage() for r in caplog.records)]
    for exc in failures:
        texts += [str(exc), repr(exc), exc.message, str(exc.__context__), repr(exc.__context__)]
    assert any("urllib3" in r.name for r in caplog.records)  # the debug capture did capture
    for text in texts:
        assert TOKEN not in text and header not in text


# --- https ---------------------------------------------------------------------------------------


@pytest.fixture
def tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 and localhost, from a CA the client
    trusts through SSL_CERT_FILE (as an operator would add a private CA)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def test_https_with_scoped_credentials_on_the_default_settings(
    origin: Origin, tls: ssl.SSLContext, cache: Path
) -> None:
    with GitServer(origin.root, tls=tls) as secure:
        scoped = Credentials(USER, TOKEN, (f"127.0.0.1:{secure.port}",))
        url = secure.url("private/repo.git#dev", scheme="git+https")
        tree = materialise_git(parse_source_uri(url), SourceSettings(cache, git_credentials=scoped))
    assert main_py(tree) == "def handler():\n    return 'dev'\n"
    assert secure.fetches == 1 and all(secure.authorized())


def test_a_redirect_from_https_to_plain_http_is_refused(
    server: GitServer, tls: ssl.SSLContext, cache: Path
) -> None:
    target = f"http://localhost:{server.port}"
    with GitServer(server.root, tls=tls, redirect_to=target) as secure:
        url = secure.url("repo.git", scheme="git+https")
        with pytest.raises(
            SourceError, match=r"redirected to plain http \(localhost:\d+\); refused"
        ):
            materialise_git(parse_source_uri(url), SourceSettings(cache))
    assert server.requests == []


# --- a git bomb: refused from the objects' headers, memory flat ----------------------------------

BOMB_CHILD = """
import json, sys
from pathlib import Path
from wrapper.errors import SourceError
from wrapper.sources.git import materialise_git
from wrapper.sources.settings import ArchiveLimits, SourceSettings
from wrapper.sources.uri import parse_source_uri
url, cache = sys.argv[1:3]
limits = ArchiveLimits(max_unpacked_bytes=100 * 1024 * 1024)
settings = SourceSettings(cache_dir=Path(cache), archive_limits=limits, allow_git_http=True)
try:
    materialise_git(parse_source_uri(url), settings)
    error = None
except SourceError as exc:
    error = exc.message
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"error": error, "peak_kib": peak}))
"""


def test_a_git_bomb_is_refused_with_memory_flat(tmp_path: Path) -> None:
    import json

    bomb = tmp_path / "repos" / "bomb.git"
    bomb.parent.mkdir()
    git("init", "-q", "--bare", "-b", "main", str(bomb), cwd=tmp_path)
    zeros = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            input=bytes(200_000_000),
            cwd=bomb,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    _plumb_commit(bomb, "main", [f"100644 blob {zeros}\tzeros.bin"])
    with GitServer(tmp_path / "repos") as server:
        command = [sys.executable, "-c", BOMB_CHILD, server.url("bomb.git"), str(tmp_path / "c")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert "a blob of 200000000 bytes); refused before unpacking it" in outcome["error"], outcome
    print(f"git bomb: peak {outcome['peak_kib']} KiB")
    assert outcome["peak_kib"] < 100 * 1024, outcome
    assert not list((tmp_path / "c").glob("git/[0-9a-f]*"))


# --- a misbehaving git server: cut off within the total deadline, memory flat -----------------

GIT_DEADLINE_CHILD = """
import json, sys, time
from pathlib import Path
from wrapper.errors import SourceError
from wrapper.sources.git import materialise_git
from wrapper.sources.settings import FetchLimits, SourceSettings
from wrapper.sources.uri import parse_source_uri
url, cache = sys.argv[1:3]
limits = FetchLimits(total_timeout=2, read_timeout=5, max_download_bytes=64 * 1024 * 1024)
settings = SourceSettings(cache_dir=Path(cache), limits=limits, allow_git_http=True)
started = time.monotonic()
try:
    materialise_git(parse_source_uri(url), settings)
    error = None
except SourceError as exc:
    error = exc.message
seconds = time.monotonic() - started
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"error": error, "seconds": seconds, "peak_kib": peak}))
"""
ADVERTISED = "application/x-git-upload-pack-advertisement"


def pkt(text: str) -> bytes:
    return f"{len(text) + 4:04x}{text}".encode()


def _refs_advertisement() -> bytes:
    sha = "1" * 40
    return (
        pkt("# service=git-upload-pack\n")
        + b"0000"
        + pkt(f"{sha} HEAD\0multi_ack_detailed no-done\n")
        + pkt(f"{sha} refs/heads/main\n")
        + b"0000"
    )


def git_stall_mid_body(conn: socket.socket) -> None:
    request_of(conn)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ADVERTISED}\r\nContent-Length: 100000\r\n\r\n"
    conn.sendall(head.encode() + _refs_advertisement()[:40])
    time.sleep(30)


def git_endless_pack(conn: socket.socket) -> None:
    """Refs as a v0 smart server sends them, then a pack that never ends (on the same or a new
    connection, for each request dulwich makes)."""
    while True:
        if "info/refs" in request_of(conn)[1]:
            body = _refs_advertisement()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {ADVERTISED}\r\n"
            conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            continue
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\n"
        conn.sendall(f"{head}Connection: close\r\n\r\n".encode() + b"0008NAK\nPACK\0\0\0\2\0\1\0\0")
        chunk = os.urandom(65536)
        while True:
            conn.sendall(chunk)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (drip_headers, r"the fetch took longer than total_timeout=2 s"),
        (git_stall_mid_body, r"the fetch took longer than total_timeout=2 s"),
        (git_endless_pack, r"total_timeout=2 s|larger than max_download_bytes=67108864"),
    ],
    ids=["drip-headers", "stall-mid-body", "endless-pack"],
)
def test_a_misbehaving_git_server_is_cut_off_within_the_total_deadline(
    tmp_path: Path, behaviour: Behaviour, expected: str
) -> None:
    import json

    server = RawServer(behaviour)
    try:
        url = f"git+http://127.0.0.1:{server.port}/repo.git"
        command = [sys.executable, "-c", GIT_DEADLINE_CHILD, url, str(tmp_path / "cache")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["error"] and re.search(expected, outcome["error"]), outcome
    print(f"{behaviour.__name__}: {outcome['seconds']:.2f} s, peak {outcome['peak_kib']} KiB")
    assert outcome["seconds"] < 3, outcome
    assert outcome["peak_kib"] < 100 * 1024, outcome


# --- proxies and trust, as the usual variables set them --------------------------------------


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_https_goes_through_the_proxy_https_proxy_names(
    origin: Origin, tls: ssl.SSLContext, cache: Path, no_proxies: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()
    no_proxies.setenv("HTTPS_PROXY", proxy.url.replace("://", "://puser:ppass@"))
    try:
        with GitServer(origin.root, tls=tls) as secure:
            scoped = Credentials(USER, TOKEN, (f"127.0.0.1:{secure.port}",))
            url = secure.url("private/repo.git#dev", scheme="git+https")
            settings = SourceSettings(cache, git_credentials=scoped)
            tree = materialise_git(parse_source_uri(url), settings)
    finally:
        proxy.close()
    assert main_py(tree) == "def handler():\n    return 'dev'\n"
    tunnel = base64.b64encode(b"puser:ppass").decode()
    assert proxy.seen and {seen[:2] for seen in proxy.seen} == {
        ("CONNECT", f"127.0.0.1:{secure.port}")
    }
    assert {seen[2] for seen in proxy.seen} == {f"Basic {tunnel}"}  # the proxy's, not the token


def test_no_proxy_bypasses_the_proxy(
    server: GitServer, cache: Path, no_proxies: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()
    no_proxies.setenv("HTTP_PROXY", proxy.url)
    no_proxies.setenv("NO_PROXY", "localhost,127.0.0.1")
    try:
        assert (
            main_py(fetch(server.url("repo.git#dev"), cache))
            == "def handler():\n    return 'dev'\n"
        )
    finally:
        proxy.close()
    assert proxy.seen == [] and server.fetches == 1


def test_requests_ca_bundle_is_trusted_and_a_stranger_is_not(
    origin: Origin, tls: ssl.SSLContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = os.environ["SSL_CERT_FILE"]
    monkeypatch.delenv("SSL_CERT_FILE")
    with GitServer(origin.root, tls=tls) as secure:
        url = parse_source_uri(secure.url("repo.git#dev", scheme="git+https"))
        with pytest.raises(SourceError, match=r"TLS certificate not trusted \(unable to get"):
            materialise_git(url, SourceSettings(tmp_path / "one"))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
        tree = materialise_git(url, SourceSettings(tmp_path / "two"))
    assert main_py(tree) == "def handler():\n    return 'dev'\n"


def test_a_certificate_for_another_host_is_refused(
    origin: Origin, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """urllib3 matches the host name itself (the context leaves it to it, for IP addresses
    under urllib3 1.26): a certificate our CA issued for another name is still refused."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(context)
    with GitServer(origin.root, tls=context) as secure:
        url = parse_source_uri(secure.url("repo.git", scheme="git+https"))
        with pytest.raises(SourceError, match=r"doesn't match 'other\.example'"):
            materialise_git(url, SourceSettings(cache))

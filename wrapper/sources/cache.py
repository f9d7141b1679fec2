"""A content-addressed folder of materialised code trees, written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Callable, Optional

from wrapper.errors import SourceError


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/fn-wrapper`, else `~/.cache/fn-wrapper` (`--cache-dir` overrides)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "fn-wrapper" if xdg else Path.home() / ".cache" / "fn-wrapper"


class CodeCache:
    """Trees keyed by a content hash: one key is filled once and then reused as it is.

    A tree is filled in a private temporary folder and renamed into place, so a reader
    never sees half a tree and concurrent fillers of the same key cannot clash.
    """

    def __init__(self, root: Optional[Path] = None) -> None:
        self.root = _private_dir(root or default_cache_dir())

    def find(self, kind: str, key: str) -> Optional[Path]:
        """The folder for `kind/key` if it was filled before."""
        folder = self.root / kind / key
        return folder if folder.is_dir() else None

    def tree(self, kind: str, key: str, fill: Callable[[Path], object]) -> Path:
        """The folder for `kind/key`, calling `fill(folder)` on a fresh folder if it is new."""
        final = self.root / kind / key
        if final.is_dir():
            return final
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=final.parent))
        try:
            fill(staging)
            staging.chmod(0o755)
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return final

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold an exclusive lock shared by every process using this cache (one fetch per name)."""
        folder = self.root / "locks"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{_digest(name)}.lock"
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def note(self, name: str) -> Optional[dict[str, Any]]:
        """What `remember(name, ...)` stored (e.g. an ETag and the tree it validated), if any."""
        try:
            with (self.root / "notes" / f"{_digest(name)}.json").open() as stream:
                value = json.load(stream)
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def remember(self, name: str, value: dict[str, Any]) -> None:
        """Store a small JSON note under `name`, replacing the old one atomically."""
        folder = self.root / "notes"
        folder.mkdir(mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as out:
            json.dump(value, out)
        os.replace(out.name, folder / f"{_digest(name)}.json")

    def scratch(self) -> IO[bytes]:
        """A temporary file inside the cache (same file system as the trees), deleted on close."""
        return tempfile.NamedTemporaryFile(dir=self._scratch_root())

    def scratch_dir(self) -> tempfile.TemporaryDirectory[str]:
        """A temporary folder inside the cache, deleted with its content on exit."""
        return tempfile.TemporaryDirectory(dir=self._scratch_root())

    def _scratch_root(self) -> Path:
        folder = self.root / "tmp"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) and check it is ours; if unwritable, fall back to the temp dir."""
    fallback = Path(tempfile.gettempdir()) / f"fn-wrapper-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        writable = os.access(path, os.W_OK)
    except OSError as exc:
        if path == fallback:
            raise SourceError(f"cannot create the code cache {path}: {exc.strerror}") from None
        return _private_dir(fallback)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise SourceError(f"code cache {path} is not a plain folder")
    if info.st_uid != os.getuid():
        raise SourceError(f"code cache {path} belongs to another user (uid {info.st_uid})")
    if not writable:
        if path == fallback:
            raise SourceError(f"code cache {path} is not writable")
        return _private_dir(fallback)
    return path

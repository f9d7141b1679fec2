"""A content-addressed folder of materialised code trees, written atomically."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Optional

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

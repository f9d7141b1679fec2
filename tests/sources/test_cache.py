"""CodeCache: content-keyed trees, filled once, atomically, in a private folder."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wrapper.errors import SourceError
from wrapper.sources.cache import CodeCache, default_cache_dir

KEY = "0123456789abcdef" * 4


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def hidden(folder: Path) -> list[str]:
    """Temporary staging folders are dot-folders next to the final one."""
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


class Filler:
    """A fill function that counts its calls and writes a small known tree."""

    def __init__(self, text: str = "X = 1\n", delay: float = 0.0) -> None:
        self.text, self.delay, self.calls = text, delay, 0
        self.lock = threading.Lock()

    def __call__(self, folder: Path) -> None:
        with self.lock:
            self.calls += 1
        (folder / "main.py").write_text(self.text)
        if self.delay:
            time.sleep(self.delay)
        (folder / "pkg").mkdir()
        (folder / "pkg" / "__init__.py").write_text("")
        (folder / "pkg" / "last.py").write_text("DONE = True\n")


def complete(folder: Path, text: str = "X = 1\n") -> bool:
    return (folder / "main.py").read_text() == text and (
        folder / "pkg" / "last.py"
    ).read_text() == "DONE = True\n"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tempfile's temp dir (the cache's fallback) into the test's own folder."""
    tmp = tmp_path / "systmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# --- filling and reuse ----------------------------------------------------------------------


def test_fill_once_then_reuse(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "cache")
    fill = Filler()
    first = cache.tree("inline", KEY, fill)
    assert fill.calls == 1
    assert first == tmp_path / "cache" / "inline" / KEY
    assert complete(first)
    stamp = (first / "main.py").stat().st_mtime_ns

    second = cache.tree("inline", KEY, fill)
    third = CodeCache(tmp_path / "cache").tree("inline", KEY, fill)  # a new instance too
    assert second == third == first
    assert fill.calls == 1
    assert (first / "main.py").stat().st_mtime_ns == stamp
    assert hidden(tmp_path / "cache") == []


def test_different_keys_and_kinds_get_different_folders(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "cache")
    a = cache.tree("inline", "a" * 64, Filler("A = 1\n"))
    b = cache.tree("inline", "b" * 64, Filler("B = 1\n"))
    c = cache.tree("archive", "a" * 64, Filler("C = 1\n"))
    assert len({a, b, c}) == 3
    assert (a / "main.py").read_text() == "A = 1\n"
    assert (b / "main.py").read_text() == "B = 1\n"
    assert (c / "main.py").read_text() == "C = 1\n"


@pytest.mark.parametrize("error", [ValueError("boom"), OSError(28, "No space left on device")])
def test_failed_fill_leaves_nothing(tmp_path: Path, error: Exception) -> None:
    cache = CodeCache(tmp_path / "cache")

    def fill(folder: Path) -> None:
        (folder / "half.py").write_text("partial")
        (folder / "sub").mkdir()
        raise error

    with pytest.raises(type(error)):
        cache.tree("inline", KEY, fill)
    kind_folder = tmp_path / "cache" / "inline"
    assert not (kind_folder / KEY).exists()
    assert list(kind_folder.iterdir()) == []  # no staging leftovers
    # a later good fill of the same key works and is not polluted
    good = Filler()
    folder = cache.tree("inline", KEY, good)
    assert good.calls == 1
    assert sorted(p.name for p in folder.iterdir()) == ["main.py", "pkg"]


def test_concurrent_fills_of_one_key_all_get_the_same_complete_tree(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    fill = Filler(delay=0.05)
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[Path] = []
    seen_complete: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            cache = CodeCache(root)
            barrier.wait()
            folder = cache.tree("archive", KEY, fill)
            ok = complete(folder)  # complete at the moment it is handed back
            with lock:
                results.append(folder)
                seen_complete.append(ok)
        except BaseException as exc:  # pragma: no cover - reported below
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert errors == []
    assert len(results) == threads
    assert set(results) == {root / "archive" / KEY}
    assert all(seen_complete)
    assert fill.calls >= 1
    assert [p.name for p in (root / "archive").iterdir()] == [KEY]  # losers cleaned up
    assert hidden(root) == []


def test_a_filler_that_loses_the_race_gets_the_winners_tree(tmp_path: Path) -> None:
    """Deterministic race: while one fill runs, another fill of the same key completes."""
    cache = CodeCache(tmp_path / "cache")
    winner = Filler("WINNER = 1\n")

    def loser(folder: Path) -> None:
        cache.tree("inline", KEY, winner)  # someone else finishes first
        (folder / "main.py").write_text("LOSER = 1\n")

    folder = cache.tree("inline", KEY, loser)
    assert folder == tmp_path / "cache" / "inline" / KEY
    assert (folder / "main.py").read_text() == "WINNER = 1\n"
    assert winner.calls == 1
    assert list((tmp_path / "cache" / "inline").iterdir()) == [folder]


# --- permissions and ownership --------------------------------------------------------------


def test_cache_folders_are_private_and_trees_readable(tmp_path: Path, umask: None) -> None:
    root = tmp_path / "a" / "b" / "cache"
    cache = CodeCache(root)
    assert cache.root == root
    assert mode(root) == 0o700
    tree = cache.tree("inline", KEY, Filler())
    assert mode(root / "inline") == 0o700
    assert mode(tree) == 0o755


def test_a_symlinked_cache_root_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SourceError, match="not a plain folder"):
        CodeCache(link)


def test_a_cache_root_owned_by_someone_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(root, 54321, 54321)  # a real foreign owner
    else:
        # cannot chown without privileges: pretend to be another user instead
        real_uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    with pytest.raises(SourceError, match="another user"):
        CodeCache(root)


def test_an_uncreatable_root_falls_back_to_the_temp_dir(
    tmp_path: Path, private_tmp: Path, umask: None
) -> None:
    blocker = tmp_path / "regular-file"
    blocker.write_text("not a folder")
    cache = CodeCache(blocker / "cache")  # mkdir fails: its parent is a file
    fallback = private_tmp / f"fn-wrapper-{os.getuid()}"
    assert cache.root == fallback
    assert mode(fallback) == 0o700
    folder = cache.tree("inline", KEY, Filler())
    assert folder == fallback / "inline" / KEY
    assert complete(folder)
    assert blocker.read_text() == "not a folder"


def test_an_unwritable_existing_root_falls_back_to_the_temp_dir(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "readonly"
    root.mkdir(mode=0o500)
    real_access = os.access
    if os.getuid() == 0:
        # Mock, because it cannot run here: root may write to a 0500 folder, so CI (as root)
        # gets the "not writable" answer only from a patched os.access for this one folder.
        monkeypatch.setattr(
            os, "access", lambda p, m: False if Path(p) == root else real_access(p, m)
        )
    try:
        cache = CodeCache(root)
        assert cache.root == private_tmp / f"fn-wrapper-{os.getuid()}"
    finally:
        root.chmod(0o700)


def test_unusable_fallback_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "regular-file"
    blocker.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))  # the fallback cannot exist either
    with pytest.raises(SourceError, match="cannot create the code cache"):
        CodeCache(blocker / "cache")


# --- where the cache lives ------------------------------------------------------------------


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "fn-wrapper"
    assert CodeCache().root == tmp_path / "xdg" / "fn-wrapper"
    assert mode(tmp_path / "xdg" / "fn-wrapper") == 0o700


def test_default_cache_dir_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "fn-wrapper"

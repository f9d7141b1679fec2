"""Tests for wrapper.sources.archive: real hostile zip / tar files built on the fly."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wrapper.errors import UnsafeArchiveError
from wrapper.sources.archive import ArchiveLimits, archive_kind, unpack_archive

MiB = 1024 * 1024
DEFAULT_LIMITS = ArchiveLimits()
TOKEN = f"archive-test-{uuid.uuid4().hex}"  # a name nothing else uses, for /tmp targets
ZipEntry = tuple[zipfile.ZipInfo, bytes]
TarEntry = tuple[tarfile.TarInfo, bytes]


# --- building archives -------------------------------------------------------------------


def zentry(name: str, data: bytes = b"", mode: int = 0o100644) -> ZipEntry:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, data


def zlink(name: str, target: str) -> ZipEntry:
    return zentry(name, target.encode(), mode=stat.S_IFLNK | 0o777)


def make_zip(*entries: ZipEntry) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point of some tests
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def tentry(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> TarEntry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(*entries: TarEntry, mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- helpers to run the unpacker and check the world outside dest -----------------------


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """dest nested two levels deep, with a file beside it that escapes would overwrite."""
    (tmp_path / "outer").mkdir()
    (tmp_path / "outer" / "keep.txt").write_text("keep")
    (tmp_path / "keep.txt").write_text("keep")
    target = tmp_path / "outer" / "dest"
    target.mkdir()
    return target


def outside(dest: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under dest's grandparent except dest's own tree, with mode, size and mtime."""
    top = dest.parent.parent
    seen = {}
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(root, d) != dest]
        for name in dirs + files:
            info = os.lstat(os.path.join(root, name))
            rel = os.path.relpath(os.path.join(root, name), top)
            seen[rel] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return seen


def reject(data: bytes, dest: Path, *fragments: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> str:
    """Unpack data expecting UnsafeArchiveError naming fragments; nothing may change outside."""
    before = outside(dest)
    with pytest.raises(UnsafeArchiveError) as caught:
        unpack_archive(io.BytesIO(data), dest, limits)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert outside(dest) == before
    assert not os.path.lexists(f"/tmp/{TOKEN}")
    assert not os.path.lexists(f"/{TOKEN}")
    return message


def tree(dest: Path) -> dict[str, str]:
    """Relative path -> 'dir', 'link:<target>' or the file's text, for everything under dest."""
    found = {}
    for path in sorted(dest.rglob("*")):
        rel = path.relative_to(dest).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_text()
    return found


def perms(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- archive_kind ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04rest", "zip"),
        (b"PK\x05\x06" + b"\0" * 18, "zip"),
        (b"\x1f\x8b\x08\x00", "tar.gz"),
        (b"BZh91AY&SY", "tar.bz2"),
        (b"\xfd7zXZ\x00\x00", "tar.xz"),
        (b"\0" * 257 + b"ustar\x0000", "tar"),
        (b"def handler(event):\n    return 1\n", None),
        (b"", None),
        (b"PK", None),
    ],
)
def test_archive_kind_magic(head: bytes, kind: Optional[str]) -> None:
    assert archive_kind(head) == kind


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        (lambda: make_zip(zentry("a.py", b"x")), "zip"),
        (lambda: make_zip(), "zip"),
        (lambda: make_tar(tentry("a.py", b"x")), "tar"),
        (lambda: make_tar(tentry("a.py", b"x"), mode="w:gz"), "tar.gz"),
        (lambda: make_tar(tentry("a.py", b"x"), mode="w:bz2"), "tar.bz2"),
        (lambda: make_tar(tentry("a.py", b"x"), mode="w:xz"), "tar.xz"),
    ],
)
def test_archive_kind_of_real_archives(build: Callable[[], bytes], kind: str) -> None:
    assert archive_kind(build()[:512]) == kind


# --- happy paths -----------------------------------------------------------------------------


def sample_tar(mode: str) -> bytes:
    return make_tar(
        tentry("./", kind=tarfile.DIRTYPE, mode=0o755),
        tentry("pkg", kind=tarfile.DIRTYPE, mode=0o700),
        tentry("pkg/__init__.py", b"init"),
        tentry("pkg/sub/deep/mod.py", b"deep"),
        tentry("./run.sh", b"#!/bin/sh", mode=0o4755),
        tentry("pkg/current", kind=tarfile.SYMTYPE, link="sub/deep/mod.py"),
        tentry("pkg/up", kind=tarfile.SYMTYPE, link="../run.sh"),
        tentry("copy.sh", kind=tarfile.LNKTYPE, link="run.sh", mode=0o755),
        mode=mode,
    )


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_happy_path(dest: Path, mode: str) -> None:
    before = outside(dest)
    files = unpack_archive(io.BytesIO(sample_tar(mode)), dest)
    assert files == ["copy.sh", "pkg/__init__.py", "pkg/sub/deep/mod.py", "run.sh"]
    assert tree(dest) == {
        "copy.sh": "#!/bin/sh",
        "pkg": "dir",
        "pkg/__init__.py": "init",
        "pkg/current": "link:sub/deep/mod.py",
        "pkg/sub": "dir",
        "pkg/sub/deep": "dir",
        "pkg/sub/deep/mod.py": "deep",
        "pkg/up": "link:../run.sh",
        "run.sh": "#!/bin/sh",
    }
    assert (dest / "pkg" / "current").read_text() == "deep"
    assert (dest / "pkg" / "up").read_text() == "#!/bin/sh"
    assert perms(dest / "run.sh") == 0o755  # setuid dropped, execute kept
    assert perms(dest / "copy.sh") == 0o755
    assert perms(dest / "pkg" / "__init__.py") == 0o644
    assert perms(dest / "pkg") == 0o755
    assert perms(dest / "pkg" / "sub") == 0o755
    assert not (dest / "copy.sh").samefile(dest / "run.sh")  # a copy, not a real hardlink
    assert outside(dest) == before


def test_zip_happy_path(dest: Path) -> None:
    data = make_zip(
        zentry("app/", mode=stat.S_IFDIR | 0o700),
        zentry("app/main.py", b"main"),
        zentry("app/lib/util.py", b"util", mode=0o100600),
        zentry("./app/bin/tool", b"tool", mode=0o106775),
        zentry("legacy.txt", b"dos", mode=0),  # no unix mode at all (a DOS-made zip)
        zlink("app/current", "lib/util.py"),
    )
    assert unpack_archive(io.BytesIO(data), dest) == [
        "app/bin/tool",
        "app/lib/util.py",
        "app/main.py",
        "legacy.txt",
    ]
    assert tree(dest) == {
        "app": "dir",
        "app/bin": "dir",
        "app/bin/tool": "tool",
        "app/current": "link:lib/util.py",
        "app/lib": "dir",
        "app/lib/util.py": "util",
        "app/main.py": "main",
        "legacy.txt": "dos",
    }
    assert perms(dest / "app" / "bin" / "tool") == 0o755
    assert perms(dest / "app" / "lib" / "util.py") == 0o644
    assert perms(dest / "legacy.txt") == 0o644
    assert perms(dest / "app") == 0o755


def test_stored_zip_and_empty_zip(dest: Path) -> None:
    info, _ = zentry("a.txt")
    info.compress_type = zipfile.ZIP_STORED
    assert unpack_archive(io.BytesIO(make_zip((info, b"plain"))), dest) == ["a.txt"]
    empty = dest.parent / "empty"
    empty.mkdir()
    assert unpack_archive(io.BytesIO(make_zip()), empty) == []
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("source", ["path", "file"])
@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_unpack_from_path_and_file_object(dest: Path, kind: str, source: str) -> None:
    if kind == "zip":
        data = make_zip(zentry("d/a.py", b"a"), zentry("b.py", b"b"))
    else:
        data = make_tar(tentry("d/a.py", b"a"), tentry("b.py", b"b"), mode=f"w:{kind[4:]}")
    archive = dest.parent / "code.archive"
    archive.write_bytes(data)
    if source == "path":
        files = unpack_archive(archive, dest)
    else:
        with archive.open("rb") as file:
            files = unpack_archive(file, dest)
    assert files == ["b.py", "d/a.py"]
    assert tree(dest) == {"b.py": "b", "d": "dir", "d/a.py": "a"}


class Unseekable(io.RawIOBase):
    """A socket-like stream: short reads, no seeking."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), 100, len(self.data))
        buf[:n], self.data = self.data[:n], self.data[n:]
        return n


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_from_unseekable_stream(dest: Path, mode: str) -> None:
    data = make_tar(tentry("a/b.txt", b"b" * 5000), tentry("c.txt", b"c"), mode=mode)
    assert unpack_archive(Unseekable(data), dest) == ["a/b.txt", "c.txt"]  # type: ignore[arg-type]
    assert (dest / "a" / "b.txt").read_text() == "b" * 5000


def test_zip_from_unseekable_stream_is_refused(dest: Path) -> None:
    data = make_zip(zentry("a.txt", b"a"))
    with pytest.raises(UnsafeArchiveError, match="seekable"):
        unpack_archive(Unseekable(data), dest)  # type: ignore[arg-type]


def test_modes_ignore_umask(dest: Path) -> None:
    data = make_tar(tentry("d/x.py", b""), tentry("y", b"", mode=0o700))
    old = os.umask(0o077)
    try:
        unpack_archive(io.BytesIO(data), dest)
    finally:
        os.umask(old)
    assert perms(dest / "d") == 0o755
    assert perms(dest / "d" / "x.py") == 0o644
    assert perms(dest / "y") == 0o755


def test_explicit_directory_after_its_files_is_fine(dest: Path) -> None:
    data = make_tar(
        tentry("a/b.txt", b"b"),
        tentry("a", kind=tarfile.DIRTYPE),
        tentry("./", kind=tarfile.DIRTYPE),
        tentry(".", kind=tarfile.DIRTYPE),
    )
    assert unpack_archive(io.BytesIO(data), dest) == ["a/b.txt"]


def test_link_to_target_root_is_allowed(dest: Path) -> None:
    data = make_tar(tentry("a/root", kind=tarfile.SYMTYPE, link=".."))
    unpack_archive(io.BytesIO(data), dest)
    assert os.readlink(dest / "a" / "root") == ".."


def test_files_exactly_at_the_byte_cap_pass(dest: Path) -> None:
    data = make_tar(tentry("a", b"x" * 600), tentry("b", b"y" * 424))
    assert unpack_archive(io.BytesIO(data), dest, ArchiveLimits(max_unpacked_bytes=1024)) == [
        "a",
        "b",
    ]


# --- rejections ------------------------------------------------------------------------------

BAD_NAMES = [
    ("../evil.py", "escapes the target directory"),
    ("a/../../evil.py", "escapes the target directory"),
    ("ok/../../../keep.txt", "escapes the target directory"),
    (f"/tmp/{TOKEN}", "absolute path"),
    (f"//{TOKEN}/x", "absolute path"),
    ("..\\evil.py", "backslash"),
    ("dir\\evil.py", "backslash"),
    ("C:\\evil.py", "backslash"),
    ("C:/evil.py", "absolute path"),
    ("c:evil.py", "absolute path"),
    ("\\\\server\\share\\evil.py", "backslash"),
]


@pytest.mark.parametrize(("name", "reason"), BAD_NAMES)
@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_bad_member_names(dest: Path, fmt: str, name: str, reason: str) -> None:
    if fmt == "zip":
        data = make_zip(zentry("fine.py", b"x"), zentry(name, b"evil"))
    else:
        data = make_tar(tentry("fine.py", b"x"), tentry(name, b"evil"))
    reject(data, dest, repr(name), reason)


def test_nul_in_name_rejected(dest: Path) -> None:
    # zipfile and tarfile both cut names at NUL when writing, so craft the pax record by hand
    info = tarfile.TarInfo("placeholder")
    info.pax_headers = {"path": "a\x00b.py"}
    data = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"\0" * 1024
    reject(data, dest, repr("a\x00b.py"), "NUL")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("up", "../../x"),
        ("a/b/up", "../../../keep.txt"),
        ("abs", "/etc/passwd"),
        ("tmp", f"/tmp/{TOKEN}"),
        ("drive", "C:/x"),
        ("empty", ""),
        ("back", "..\\..\\x"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_symlink_targets_rejected(dest: Path, fmt: str, link: str, target: str) -> None:
    if fmt == "zip":
        data = make_zip(zlink(link, target), zentry("after.txt", b"x"))
    else:
        data = make_tar(tentry(link, kind=tarfile.SYMTYPE, link=target), tentry("after.txt", b"x"))
    reject(data, dest, repr(link))
    assert not (dest / "after.txt").exists()  # rejected on sight, not only by the final check


def test_overlong_zip_link_target_rejected(dest: Path) -> None:
    reject(make_zip(zlink("long", "a/" * 3000)), dest, "'long'", "too long")


def test_symlink_chain_escaping_rejected(dest: Path) -> None:
    # each link stays inside when read alone, but x/y -> x/up/.. -> dest/..
    data = make_tar(
        tentry("x/y", kind=tarfile.SYMTYPE, link="up/.."),
        tentry("x/up", kind=tarfile.SYMTYPE, link=".."),
    )
    reject(data, dest, "'x/y'", "links outside")


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_write_through_earlier_symlink_rejected(dest: Path, fmt: str) -> None:
    if fmt == "zip":
        data = make_zip(
            zentry("real/", mode=stat.S_IFDIR | 0o755),
            zlink("link", "real"),
            zentry("link/x.py", b"through"),
        )
    else:
        data = make_tar(
            tentry("real", kind=tarfile.DIRTYPE),
            tentry("link", kind=tarfile.SYMTYPE, link="real"),
            tentry("link/x.py", b"through"),
        )
    reject(data, dest, "'link/x.py'", "symlink")
    assert not (dest / "real" / "x.py").exists()


@pytest.mark.parametrize(
    "target", ["../keep.txt", "/etc/passwd", "missing.txt", "later.txt", "dir", "sym", "a/../f"]
)
def test_bad_hardlinks_rejected(dest: Path, target: str) -> None:
    data = make_tar(
        tentry("f", b"f"),
        tentry("dir", kind=tarfile.DIRTYPE),
        tentry("sym", kind=tarfile.SYMTYPE, link="f"),
        tentry("hard", kind=tarfile.LNKTYPE, link=target),
        tentry("later.txt", b"later"),
    )
    reject(data, dest, "'hard'", "hardlink")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"9"])
def test_tar_special_files_rejected(dest: Path, kind: bytes) -> None:
    info, _ = tentry("dev/thing", kind=kind)
    info.devmajor, info.devminor = 1, 3
    reject(make_tar((info, b"")), dest, "'dev/thing'", "device")


@pytest.mark.parametrize("mode", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_zip_special_files_rejected(dest: Path, mode: int) -> None:
    reject(make_zip(zentry("dev/thing", b"", mode=mode | 0o644)), dest, "'dev/thing'", "device")


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        ("a.txt", "a.txt", "duplicate"),
        ("a.txt", "./a.txt", "duplicate"),
        ("d/a.txt", "d//./a.txt", "duplicate"),
        ("a", "a/b.txt", "clashes"),
        ("a/b.txt", "a", "clashes"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_duplicates_rejected(dest: Path, fmt: str, first: str, second: str, reason: str) -> None:
    if fmt == "zip":
        data = make_zip(zentry(first, b"1"), zentry(second, b"2"))
    else:
        data = make_tar(tentry(first, b"1"), tentry(second, b"2"))
    reject(data, dest, repr(second), reason)


def test_duplicate_directory_rejected(dest: Path) -> None:
    reject(make_zip(zentry("d/"), zentry("d/")), dest, "'d/'", "duplicate")


def test_file_over_explicit_directory_rejected(dest: Path) -> None:
    reject(make_tar(tentry("d", kind=tarfile.DIRTYPE), tentry("d", b"f")), dest, "'d'", "duplicate")


def test_regular_file_naming_dest_itself_rejected(dest: Path) -> None:
    reject(make_tar(tentry("./", b"data")), dest, "'./'")


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_too_many_members(dest: Path, fmt: str) -> None:
    names = [f"f{i}.txt" for i in range(6)]
    if fmt == "zip":
        data = make_zip(*(zentry(n, b"x") for n in names))
    else:
        data = make_tar(*(tentry(n, b"x") for n in names))
    reject(data, dest, "max_members=5", limits=ArchiveLimits(max_members=5))
    if fmt == "zip":
        assert list(dest.iterdir()) == []  # zip counts up front


@pytest.mark.parametrize("fmt", ["zip", "w:gz", "w:bz2", "w:xz"])
def test_zip_bomb(dest: Path, fmt: str) -> None:
    zeros = b"\0" * (5 * MiB)
    if fmt == "zip":
        data = make_zip(zentry("bomb.bin", zeros))
    else:
        data = make_tar(tentry("bomb.bin", zeros), mode=fmt)
    assert len(data) < 100 * 1024
    reject(data, dest, "max_unpacked_bytes=1048576", "'bomb.bin'", limits=ArchiveLimits(1000, MiB))
    assert (dest / "bomb.bin").stat().st_size <= MiB


def test_many_small_members_add_up_to_the_cap(dest: Path) -> None:
    data = make_zip(*(zentry(f"f{i}", b"x" * 300) for i in range(5)))
    reject(data, dest, "max_unpacked_bytes=1000", "'f3'", limits=ArchiveLimits(1000, 1000))


def test_hardlink_copies_count_towards_the_cap(dest: Path) -> None:
    data = make_tar(
        tentry("f", b"x" * 600),
        tentry("g", kind=tarfile.LNKTYPE, link="f"),
    )
    reject(data, dest, "max_unpacked_bytes=1000", "'g'", limits=ArchiveLimits(1000, 1000))


def test_tar_header_lying_about_size_is_capped_by_bytes_written(dest: Path) -> None:
    # The ustar header says 0 bytes; a pax record says 3 MiB, and 3 MiB follow.
    size = 3 * MiB
    info = tarfile.TarInfo("liar.bin")
    info.size = 0
    info.pax_headers = {"size": str(size)}
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    data = gzip.compress(header + b"\0" * size + b"\0" * 1024)
    limits = ArchiveLimits(1000, MiB)
    reject(data, dest, "max_unpacked_bytes=1048576", "'liar.bin'", limits=limits)


def test_oversized_tar_header_is_capped(dest: Path) -> None:
    # a pax header tarfile would read into memory whole: the decompressed stream is capped
    info = tarfile.TarInfo("big-header.txt")
    info.pax_headers = {"comment": "x" * (2 * MiB)}
    data = bz2.compress(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"\0" * 1024)
    reject(data, dest, "tar stream exceeds", "max_unpacked_bytes", limits=ArchiveLimits(10, MiB))


def test_encrypted_zip_member_rejected(dest: Path) -> None:
    # zipfile clears flag bits when writing, so set "encrypted" (0x1) in both headers afterwards
    data = bytearray(make_zip(zentry("secret.py", b"x")))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0].flag_bits & 0x1
    reject(bytes(data), dest, "'secret.py'", "encrypted")


def test_bzip2_zip_member_rejected(dest: Path) -> None:
    info, data = zentry("a.txt", b"x")
    info.compress_type = zipfile.ZIP_BZIP2
    reject(make_zip((info, data)), dest, "'a.txt'", "compression")


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


CORRUPT = {
    "zip truncated": lambda: make_zip(zentry("a.txt", b"a" * 1000))[:-30],
    "zip bad crc": lambda: _flip(make_zip(zentry("a.txt", os.urandom(1000))), 100),
    "tar bad checksum": lambda: _flip(make_tar(tentry("a.txt", b"a")), 0),
    "tar truncated data": lambda: make_tar(tentry("a.txt", b"a" * 5000))[:2048],
    "tar.gz truncated": lambda: make_tar(tentry("a.txt", os.urandom(5000)), mode="w:gz")[:3000],
    "tar.gz bad crc": lambda: _flip(make_tar(tentry("a", os.urandom(900)), mode="w:gz"), -6),
    "tar.xz garbage": lambda: b"\xfd7zXZ\x00" + b"garbage" * 100,
    "tar.bz2 garbage": lambda: b"BZh9" + b"garbage" * 100,
    "gzip of text": lambda: gzip.compress(b"def handler(): pass\n" * 50),
    "xz of text": lambda: lzma.compress(b"def handler(): pass\n" * 50),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_archive(dest: Path, case: str) -> None:
    message = reject(CORRUPT[case](), dest, "cannot unpack archive")
    assert len(message) > len("cannot unpack archive: ")


@pytest.mark.parametrize("data", [b"hello world, not an archive", b"", b"\0" * 2000])
def test_not_an_archive(dest: Path, data: bytes) -> None:
    reject(data, dest, "not a zip or tar archive")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchiveError, match="cannot unpack archive"):
        unpack_archive(tmp_path / "nope.zip", tmp_path)


# --- property: whatever the names, nothing lands outside dest ------------------------------

SAFE_PIECES = ["a", "b", "x", "/", "a/", "b/", "./"]
HOSTILE_PIECES = ["..", "../", ".", "//", "\\", ":", "C:", "\x00", "\\\\"]
TOKENS = ["a", "b", "x", "C:"]
# safe pieces weighted up so that a good share of archives unpack (with links) and get walked
pieces = st.sampled_from(SAFE_PIECES * 4 + HOSTILE_PIECES)
names = st.lists(pieces, min_size=1, max_size=6).map("".join)
members = st.lists(
    st.tuples(st.sampled_from(["file", "dir", "symlink", "hardlink"]), names, names),
    min_size=1,
    max_size=4,
)
DEPTH = 8  # deeper than any name can climb (max 6 pieces)


def build(fmt: str, entries: list[tuple[str, str, str]]) -> bytes:
    if fmt == "zip":
        zips = []
        for kind, name, target in entries:
            if kind == "dir":
                zips.append(zentry(name.rstrip("/") + "/", mode=stat.S_IFDIR | 0o755))
            elif kind == "file":
                zips.append(zentry(name, b"data"))
            else:
                zips.append(zlink(name, target))
        return make_zip(*zips)
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE}
    kinds.update(symlink=tarfile.SYMTYPE, hardlink=tarfile.LNKTYPE)
    return make_tar(
        *(
            tentry(name, b"data" if kind == "file" else b"", kinds[kind], target)
            for kind, name, target in entries
        )
    )


@settings(max_examples=200, deadline=None)
@given(fmt=st.sampled_from(["zip", "tar"]), entries=members)
def test_property_nothing_escapes(fmt: str, entries: list[tuple[str, str, str]]) -> None:
    data = build(fmt, entries)
    at_root = [token for token in TOKENS if os.path.lexists("/" + token)]
    with tempfile.TemporaryDirectory() as top:
        deep = Path(top, *(f"l{i}" for i in range(DEPTH)))
        target = deep / "dest"
        target.mkdir(parents=True)
        try:
            files = unpack_archive(io.BytesIO(data), target)
        except UnsafeArchiveError:
            files = None
        # outside dest there is nothing but the chain of folders leading to it
        inside = os.path.relpath(target, top) + os.sep
        found = [
            os.path.relpath(os.path.join(root, name), top)
            for root, dirs, leaves in os.walk(top)
            for name in dirs + leaves
        ]
        chain = [os.path.join(*(f"l{i}" for i in range(n))) for n in range(1, DEPTH + 1)]
        assert sorted(p for p in found if not p.startswith(inside)) == [*chain, inside[:-1]]
        if files is not None:
            real_dest = os.path.realpath(target)
            for root, dirs, leaves in os.walk(target):
                for name in dirs + leaves:
                    path = os.path.join(root, name)
                    assert os.path.commonpath([real_dest, os.path.realpath(path)]) == real_dest
            for rel in files:
                assert (target / rel).is_file() and not (target / rel).is_symlink()
    assert [token for token in TOKENS if os.path.lexists("/" + token)] == at_root

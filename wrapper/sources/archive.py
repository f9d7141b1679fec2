"""The one place untrusted zip and tar archives are unpacked; every member is checked first."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Optional, Protocol, Union, cast

from wrapper.errors import UnsafeArchiveError
from wrapper.sources.settings import ArchiveLimits

_CHUNK = 64 * 1024
_MAX_LINK_TARGET = 4096
# Decompressed tar bytes allowed per member beyond max_unpacked_bytes (headers, long names,
# padding): tarfile reads a pax or long-name header into memory whole, so the stream is capped.
_TAR_HEADER_ALLOWANCE = 8 * 1024
_DRIVE = re.compile(r"[A-Za-z]:")
_COMPRESSED_TARS = ((b"\x1f\x8b", "tar.gz"), (b"BZh", "tar.bz2"), (b"\xfd7zXZ\x00", "tar.xz"))
# What zipfile, tarfile and the decompressors raise on a corrupt archive (and os on a write error).
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, struct.error)
_BROKEN = (*_ARCHIVE_ERRORS, EOFError, NotImplementedError, OSError, OverflowError, ValueError)
_Parts = tuple[str, ...]


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def archive_kind(head: bytes) -> Optional[str]:
    """Kind of archive from its first bytes: "zip", "tar", "tar.gz", "tar.bz2", "tar.xz" or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    for magic, kind in _COMPRESSED_TARS:
        if head.startswith(magic):
            return kind
    return "tar" if head[257:262] == b"ustar" else None


def unpack_archive(
    archive: Union[Path, BinaryIO], dest: Path, limits: Optional[ArchiveLimits] = None
) -> list[str]:
    """Unpack a zip or tar archive into the empty folder dest; the regular files written, sorted."""
    limits = limits or ArchiveLimits()
    try:
        if isinstance(archive, Path):
            with archive.open("rb") as file:
                return _unpack(file, dest, limits)
        return _unpack(archive, dest, limits)
    except _BROKEN as exc:
        raise UnsafeArchiveError(f"cannot unpack archive: {exc}") from exc


def _unpack(archive: BinaryIO, dest: Path, limits: ArchiveLimits) -> list[str]:
    head = b""
    while len(head) < 512 and (chunk := archive.read(512 - len(head))):
        head += chunk
    kind = archive_kind(head)
    if kind is None:
        raise UnsafeArchiveError("not a zip or tar archive")
    unpacker = SafeTree(dest, limits)
    if kind == "zip":
        _unpack_zip(archive, unpacker)
    else:
        _unpack_tar(_Input(archive, head), kind, unpacker)
    unpacker.finish()
    return sorted(unpacker.files)


def _unpack_zip(archive: BinaryIO, unpacker: SafeTree) -> None:
    if not archive.seekable():
        raise UnsafeArchiveError("a zip archive must be read from a seekable file")
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        unpacker.count(len(infos))
        for info in infos:
            name, mode = info.filename, info.external_attr >> 16
            if info.flag_bits & 0x1:
                raise UnsafeArchiveError(f"archive member {name!r} is encrypted")
            if name.endswith("/") or stat.S_ISDIR(mode):
                unpacker.directory(name)
            elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFLNK):
                raise _special(name)
            elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                # zipfile decompresses bzip2 / lzma members without an output bound
                raise UnsafeArchiveError(
                    f"archive member {name!r} uses unsupported compression {info.compress_type}"
                )
            else:
                with zf.open(info) as src:
                    if stat.S_ISLNK(mode):
                        target = src.read(_MAX_LINK_TARGET + 1)
                        if len(target) > _MAX_LINK_TARGET:
                            raise UnsafeArchiveError(f"archive member {name!r}: link too long")
                        unpacker.symlink(name, target.decode("utf-8", "surrogateescape"))
                    else:
                        unpacker.write(name, src, bool(mode & 0o111))


def _unpack_tar(raw: _Input, kind: str, unpacker: SafeTree) -> None:
    limits = unpacker.limits
    cap = limits.max_unpacked_bytes + (limits.max_members + 1) * _TAR_HEADER_ALLOWANCE
    stream = _Input(_decompressed(raw, kind), b"", cap)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            unpacker.count(1)
            name, executable = member.name, bool(member.mode & 0o111)
            if member.isdir():
                unpacker.directory(name)
            elif member.issym():
                unpacker.symlink(name, member.linkname)
            elif member.islnk():
                unpacker.hardlink(name, member.linkname, executable)
            elif member.isreg():
                src = tar.extractfile(member)
                assert src is not None  # always a file object for a regular member
                unpacker.write(name, src, executable)
            else:
                raise _special(name)
    while stream.read(_CHUNK):  # read to the end so the decompressor verifies its checksum
        pass


def _decompressed(raw: _Input, kind: str) -> _Readable:
    if kind == "tar.gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "tar.bz2":
        return bz2.BZ2File(raw)
    if kind == "tar.xz":
        return lzma.LZMAFile(cast(BinaryIO, raw))  # typeshed asks for IO; read() is all it uses
    return raw


class _Input(io.BufferedIOBase):
    """Reads src after replaying head (bytes already consumed from it); at most cap bytes."""

    def __init__(self, src: _Readable, head: bytes, cap: Optional[int] = None) -> None:
        super().__init__()
        self._src, self._head, self._cap, self._total = src, head, cap, 0

    def read(self, size: Optional[int] = -1) -> bytes:
        want = -1 if size is None or size < 0 else size
        if self._head:
            data = self._head if want < 0 else self._head[:want]
            self._head = self._head[len(data) :]
        else:
            data = self._src.read(want)
        self._total += len(data)
        if self._cap is not None and self._total > self._cap:
            raise UnsafeArchiveError(
                f"tar stream exceeds {self._cap} bytes (max_unpacked_bytes plus header allowance)"
            )
        return data


class SafeTree:
    """Writes checked members (files, folders, links) under dest, remembering what each path
    it made is; archives and git checkouts both build their trees through it."""

    def __init__(self, dest: Path, limits: ArchiveLimits) -> None:
        self.dest, self.limits = dest, limits
        self.kinds: dict[_Parts, str] = {}  # "dir", "file" or "link"; parents made on the way
        self.explicit: set[_Parts] = set()  # the paths archive members named
        self.links: dict[_Parts, str] = {}
        self.files: list[str] = []
        self.members = self.written = 0

    def count(self, members: int) -> None:
        self.members += members
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"archive has more than max_members={self.limits.max_members} members"
            )

    def _claim(self, name: str, kind: str) -> _Parts:
        """Check a member's path against earlier ones and create its parent directories."""
        parts = _member_parts(name)
        if not parts:
            if kind == "dir":
                return parts  # "./": the target directory itself
            raise UnsafeArchiveError(f"archive member {name!r} names the target directory")
        for depth in range(1, len(parts)):
            seen = self.kinds.get(parts[:depth])
            if seen == "link":
                raise UnsafeArchiveError(f"archive member {name!r} goes through a symlink")
            if seen == "file":
                raise UnsafeArchiveError(f"archive member {name!r} clashes with an earlier file")
            if seen is None:
                self._mkdir(parts[:depth])
        if parts in self.explicit:
            raise UnsafeArchiveError(f"archive member {name!r} is a duplicate")
        if parts in self.kinds and kind != "dir":
            raise UnsafeArchiveError(f"archive member {name!r} clashes with an earlier directory")
        if kind == "dir" and parts not in self.kinds:
            self._mkdir(parts)
        self.kinds[parts] = kind
        self.explicit.add(parts)
        return parts

    def directory(self, name: str) -> None:
        """A folder member (parents are made on the way by every member anyway)."""
        self._claim(name, "dir")

    def _mkdir(self, parts: _Parts) -> None:
        path = self.dest.joinpath(*parts)
        os.mkdir(path, 0o755)
        os.chmod(path, 0o755)  # whatever the umask
        self.kinds[parts] = "dir"

    def write(self, name: str, src: _Readable, executable: bool) -> None:
        parts = self._claim(name, "file")
        mode = 0o755 if executable else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        cap = self.limits.max_unpacked_bytes
        with open(os.open(self.dest.joinpath(*parts), flags, mode), "wb") as out:
            os.fchmod(out.fileno(), mode)
            while chunk := src.read(_CHUNK):
                self.written += len(chunk)
                if self.written > cap:
                    raise UnsafeArchiveError(
                        f"archive unpacks to more than max_unpacked_bytes={cap} bytes "
                        f"(at member {name!r})"
                    )
                out.write(chunk)
        self.files.append("/".join(parts))

    def hardlink(self, name: str, target: str, executable: bool) -> None:
        source = _split(target)
        if target.startswith("/") or self.kinds.get(source) != "file":
            raise UnsafeArchiveError(
                f"archive member {name!r} is a hardlink to {target!r}, not to an earlier file"
            )
        with open(os.open(self.dest.joinpath(*source), os.O_RDONLY | os.O_NOFOLLOW), "rb") as src:
            self.write(name, src, executable)

    def symlink(self, name: str, target: str) -> None:
        parts = self._claim(name, "link")
        if not target or target.startswith("/") or _DRIVE.match(target) or _bad_chars(target):
            raise UnsafeArchiveError(f"archive member {name!r} links to unsafe target {target!r}")
        depth = len(parts) - 1
        for part in _split(target):
            depth += -1 if part == ".." else 1
            if depth < 0:
                raise _escaping_link(name)
        os.symlink(target, self.dest.joinpath(*parts))
        self.links[parts] = name

    def finish(self) -> None:
        """Resolve every symlink for real: a chain of inside links can still lead out."""
        root = os.path.realpath(self.dest)
        for parts, name in self.links.items():
            real = os.path.realpath(self.dest.joinpath(*parts))
            if os.path.commonpath([root, real]) != root:
                raise _escaping_link(name)


def _member_parts(name: str) -> _Parts:
    if _bad_chars(name):
        raise UnsafeArchiveError(f"archive member {name!r} has a backslash or NUL in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = _split(name)
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} escapes the target directory")
    return parts


def _split(path: str) -> _Parts:
    return tuple(part for part in path.split("/") if part not in ("", "."))


def _bad_chars(text: str) -> bool:
    return "\\" in text or "\x00" in text


def _special(name: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"archive member {name!r} is a device, FIFO or other special file")


def _escaping_link(name: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"archive member {name!r} links outside the target directory")

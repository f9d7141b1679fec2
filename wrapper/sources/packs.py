"""Git packs checked before they are indexed: every object's unpacked size is read from its
header (a delta's from the start of its instructions) and the pack's total held to
max_unpacked_bytes, inflating in bounded pieces that also catch a header that lies.

dulwich inflates each object whole while indexing a pack, so a 200 MB blob of zeros (a few
hundred KB on the wire) would take 200 MB of memory before any later check could refuse it.
"""

from __future__ import annotations

import zlib
from typing import IO

from wrapper.errors import UnsafeArchiveError

_PIECE = 64 * 1024
_OFS_DELTA, _REF_DELTA = 6, 7
_TYPES = {1: "commit", 2: "tree", 3: "blob", 4: "tag", _OFS_DELTA: "delta", _REF_DELTA: "delta"}


def check_pack(pack: IO[bytes], max_unpacked_bytes: int) -> int:
    """The bytes `pack` unpacks to, read from its start; UnsafeArchiveError when they exceed
    `max_unpacked_bytes`, or when an object inflates to other than it declares."""
    reader = _Reader(pack)
    if reader.exact(4) != b"PACK":
        raise UnsafeArchiveError("the server sent something other than a git pack")
    reader.exact(4)  # version
    count = int.from_bytes(reader.exact(4), "big")
    total = 0
    for number in range(count):
        kind, declared = reader.object_header()
        if kind not in _TYPES:
            raise UnsafeArchiveError(f"pack object {number} has unknown type {kind}")
        delta = kind in (_OFS_DELTA, _REF_DELTA)
        unpacked = declared if not delta else 0  # a whole object: refused before inflating
        if total + unpacked <= max_unpacked_bytes:
            unpacked = reader.inflated(declared, delta)
        total += unpacked
        if total > max_unpacked_bytes:
            raise UnsafeArchiveError(
                f"what the server sent unpacks to more than max_unpacked_bytes="
                f"{max_unpacked_bytes} (a {_TYPES[kind]} of {unpacked} bytes); refused before "
                "unpacking it"
            )
    return total


class _Reader:
    """Pack bytes read in pieces, with what zlib did not consume put back."""

    def __init__(self, pack: IO[bytes]) -> None:
        self.pack, self.buffer = pack, b""

    def exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._more()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def object_header(self) -> tuple[int, int]:
        """An object's type and the size its header declares (skipping a delta's base)."""
        byte = self.exact(1)[0]
        kind, size, shift = (byte >> 4) & 7, byte & 15, 4
        while byte & 0x80:
            byte = self.exact(1)[0]
            size |= (byte & 0x7F) << shift
            shift += 7
        if kind == _OFS_DELTA:
            while self.exact(1)[0] & 0x80:
                pass
        elif kind == _REF_DELTA:
            self.exact(20)
        return kind, size

    def inflated(self, declared: int, delta: bool) -> int:
        """Inflate one object's data in bounded pieces, output thrown away: the size of the
        object it makes (a delta's target size, from its instructions' head)."""
        inflater, seen, head = zlib.decompressobj(), 0, b""
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif self.buffer:
                data, self.buffer = self.buffer, b""
            else:
                data = self._more()
            try:
                piece = inflater.decompress(data, _PIECE)
            except zlib.error:
                raise UnsafeArchiveError("the pack holds corrupt data") from None
            seen += len(piece)
            if seen > declared:
                raise UnsafeArchiveError("a pack object inflates to more than it declares")
            if delta and len(head) < 20:
                head += piece[: 20 - len(head)]
        self.buffer = inflater.unused_data + self.buffer
        if seen != declared:
            raise UnsafeArchiveError("a pack object inflates to less than it declares")
        return _target_size(head) if delta else declared

    def _more(self) -> bytes:
        data = self.pack.read(_PIECE)
        if not data:
            raise UnsafeArchiveError("the pack ends early")
        return data


def _target_size(head: bytes) -> int:
    """The size a delta's instructions make: the second of the two varints they start with."""
    sizes, value, shift = [], 0, 0
    for byte in head:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            sizes.append(value)
            if len(sizes) == 2:
                return sizes[1]
            value, shift = 0, 0
    raise UnsafeArchiveError("a pack delta has no sizes")

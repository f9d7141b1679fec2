"""Tests for wrapper.sources.packs on packs made by git and by hand (lying headers, deltas)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from wrapper.errors import UnsafeArchiveError
from wrapper.sources.packs import check_pack


def header(kind: int, size: int) -> bytes:
    """A pack object header: type and size, as git writes them."""
    out = [(kind << 4) | (size & 15)]
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def varint(value: int) -> bytes:
    out = []
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            return bytes(out)
        out[-1] |= 0x80


def pack(*objects: bytes) -> io.BytesIO:
    body = b"PACK" + (2).to_bytes(4, "big") + len(objects).to_bytes(4, "big") + b"".join(objects)
    return io.BytesIO(body + hashlib.sha1(body).digest())


def blob(data: bytes, declared: int | None = None) -> bytes:
    return header(3, len(data) if declared is None else declared) + zlib.compress(data)


def test_a_pack_made_by_git_unpacks_to_what_its_objects_hold(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    texts = [os.urandom(3000).hex().encode(), b"small\n", b""]
    shas = []
    for text in texts:
        done = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            input=text,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=True,
        )
        shas.append(done.stdout)
    made = subprocess.run(
        ["git", "pack-objects", "--stdout"],
        input=b"".join(shas),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=True,
    )
    assert check_pack(io.BytesIO(made.stdout), 10**6) == sum(len(t) for t in texts)
    with pytest.raises(UnsafeArchiveError, match="more than max_unpacked_bytes=6000"):
        check_pack(io.BytesIO(made.stdout), 6000)


def test_an_object_over_the_cap_is_refused_by_its_header_without_inflating() -> None:
    # 1 GiB declared, its data never inflated (the stream here is not even valid zlib)
    with pytest.raises(UnsafeArchiveError, match=r"a blob of 1073741824 bytes"):
        check_pack(pack(header(3, 2**30) + b"not zlib"), 512 * 2**20)


def test_a_header_that_understates_its_object_is_caught_in_bounded_pieces() -> None:
    lying = blob(b"\0" * 50_000_000, declared=10)
    with pytest.raises(UnsafeArchiveError, match="inflates to more than it declares"):
        check_pack(pack(lying), 512 * 2**20)


def test_a_delta_is_counted_by_the_size_it_makes() -> None:
    base = blob(b"x" * 100)
    instructions = varint(100) + varint(3 * 2**30) + b"\x90\x64"  # copy 100 bytes, 3 GiB target
    delta = header(6, len(instructions)) + b"\x01" + zlib.compress(instructions)
    with pytest.raises(UnsafeArchiveError, match=r"a delta of 3221225472 bytes"):
        check_pack(pack(base, delta), 512 * 2**20)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GARBAGE!" * 3, "other than a git pack"),
        (pack(blob(b"abc")).getvalue()[:15], "the pack ends early"),
        (pack(header(3, 3) + b"\x78\x9cnot deflate").getvalue(), "corrupt data"),
        (pack(blob(b"abc", declared=5)).getvalue(), "inflates to less than it declares"),
    ],
)
def test_malformed_packs_are_named(data: bytes, message: str) -> None:
    with pytest.raises(UnsafeArchiveError, match=message):
        check_pack(io.BytesIO(data), 2**20)

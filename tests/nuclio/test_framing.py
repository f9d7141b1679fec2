"""Frames read from a real socket pair, however the bytes arrive."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wrapper.nuclio.framing import FrameReader, ProcessorClosed, ProcessorGone


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def read_all(writes: list[bytes], count: int) -> list[bytes]:
    """Write `writes` one by one from a thread; read `count` frames on the other end."""
    ours, theirs = socket.socketpair()
    try:
        writer = threading.Thread(target=lambda: [theirs.sendall(part) for part in writes])
        writer.start()
        reader = FrameReader(ours)
        payloads = [reader.read() for _ in range(count)]
        writer.join()
        return payloads
    finally:
        ours.close()
        theirs.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=5),
    st.lists(st.integers(min_value=0, max_value=20000), max_size=6),
)
def test_frames_split_or_joined_anywhere_come_out_whole(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    edges = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    writes = [stream[a:b] for a, b in zip(edges, edges[1:])]
    assert read_all(writes, len(payloads)) == payloads


def test_a_large_payload_after_its_length() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, more than a socket buffer holds
    assert read_all([frame(payload)[:4], frame(payload)[4:]], 1) == [payload]


@pytest.mark.parametrize(
    ("sent", "error", "message"),
    [
        (b"", ProcessorClosed, "closed the event socket"),
        (b"\x00\x00", ProcessorGone, "in the middle of a frame"),
        (frame(b"abc")[:5], ProcessorGone, "in the middle of a frame"),
        (b"\x00\x00\x00\x00", ProcessorGone, "announced 0 bytes"),
        (b"\xff\xff\xff\xff", ProcessorGone, "announced -1 bytes"),
    ],
)
def test_the_end_of_the_stream_or_a_bad_length_is_named(
    sent: bytes, error: type, message: str
) -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(sent)
    theirs.close()
    with pytest.raises(error, match=message) as caught:
        FrameReader(ours).read()
    ours.close()
    assert type(caught.value) is error

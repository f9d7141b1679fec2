"""The nuclio door's encoding of events and responses, without a socket."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.nuclio.conftest import decode_body, event
from wrapper.nuclio import codec
from wrapper.reply import Reply


@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_body_survives_the_response_json(body: bytes) -> None:
    answer = json.loads(codec.response_json(Reply(200, body, "text/plain")))
    assert decode_body(answer) == body
    assert answer["body_encoding"] == ("text" if _utf8(body) else "base64")


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_response_json_fields_and_event_id() -> None:
    reply = Reply(201, b'{"a": 1}', "application/json", {"X-A": "1"})
    assert json.loads(codec.response_json(reply, 'id"1')) == {
        "body": '{"a": 1}',
        "body_encoding": "text",
        "content_type": "application/json",
        "status_code": 201,
        "headers": {"X-A": "1"},
        "event_id": 'id"1',
    }


def test_the_m_line_never_says_zero() -> None:
    m_line, r_line, _ = codec.reply_lines(b"{}", 0).split(b"\n")
    assert json.loads(m_line[1:])["duration"] > 0
    assert json.loads(codec.reply_lines(b"{}", 2_500_000_123)[1:].split(b"\n")[0]) == {
        "duration": 2.500000123
    }
    assert r_line == b"r{}"


def test_decoded_event_fields() -> None:
    payload = msgpack.packb(
        event(b"[1]", content_type="application/json", headers={"x-a": "b"}), use_bin_type=True
    )
    decoded, batch = codec.decode_events(payload, decode_strings=True)
    assert not batch
    assert decoded.body == [1] and decoded.headers == {"X-A": "b"}
    assert decoded.timestamp.isoformat() == "2023-11-14T22:13:20"  # naive UTC, as Nuclio


def test_missing_keys_get_defaults() -> None:
    decoded, _ = codec.decode_events(msgpack.packb({}), decode_strings=True)
    assert (decoded.path, decoded.body, decoded.headers) == ("/", b"", {})
    assert len(decoded.id) == 32  # a fresh request id


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (msgpack.packb(3), "expected an event map or a list of them, got int"),
        (msgpack.packb([{}, 2]), "got list"),
        (b"\xc1", "not one msgpack value"),
        (msgpack.packb({"path": b"\xff"}, use_bin_type=False), "not UTF-8"),
    ],
)
def test_malformed_payloads_are_named(payload: bytes, message: str) -> None:
    with pytest.raises(codec.MalformedEvent, match=message):
        codec.decode_events(payload, decode_strings=True)

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
    assert decoded.body == [1] and decoded.headers == {"x-a": "b"}  # names as sent
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


@pytest.mark.parametrize("decode_strings", [True, False])
def test_a_malformed_batch_names_the_id_of_each_item(decode_strings: bool) -> None:
    items = [event(event_id="1"), {**event(event_id="2"), "size": "x"}, 3, {"id": 4}, {"id": 1.5}]
    with pytest.raises(codec.MalformedEvent) as raised:
        codec.decode_events(msgpack.packb(items, use_bin_type=True), decode_strings)
    assert raised.value.ids == ["1", "2", "", "4", ""]
    with pytest.raises(codec.MalformedEvent) as raised:
        codec.decode_events(msgpack.packb({**event(), "size": "x"}), decode_strings)
    assert raised.value.ids is None  # one event: answered with one object


def test_a_batch_with_a_string_that_is_not_utf8_names_the_ids() -> None:
    items = [{"id": "1"}, {"id": "2", "path": b"\xff"}]
    with pytest.raises(codec.MalformedEvent, match="not UTF-8") as raised:
        codec.decode_events(msgpack.packb(items, use_bin_type=False), decode_strings=True)
    assert raised.value.ids == ["1", "2"]


def test_id_text_decodes_raw_mode_ids() -> None:
    assert codec.id_text(b"abc") == "abc"
    assert codec.id_text("abc") == "abc"
    assert codec.id_text(7) == "7"

"""wrapper.events: the Event every door hands the handler (DESIGN §4, "Events in")."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapper.events import canonical_header, decode_body, make_event, new_request_id

HEX32 = re.compile(r"[0-9a-f]{32}")


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("content-type", "Content-Type"),
        ("CONTENT-TYPE", "Content-Type"),
        ("Content-Type", "Content-Type"),
        ("cOnTeNt-TyPe", "Content-Type"),
        ("x-request-id", "X-Request-Id"),
        ("X-REQUEST-ID", "X-Request-Id"),
        ("host", "Host"),
        ("x-b3-traceid", "X-B3-Traceid"),
        ("accept", "Accept"),
    ],
)
def test_canonical_header(name: str, canonical: str) -> None:
    assert canonical_header(name) == canonical
    assert canonical_header(name) == canonical  # the memoised answer is the same


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789"))
def test_canonical_header_is_idempotent_and_case_blind(name: str) -> None:
    once = canonical_header(name)
    assert canonical_header(once) == once
    assert canonical_header(name.upper()) == once
    assert canonical_header(name.lower()) == once
    assert once.lower() == name.lower()


def test_headers_are_canonical_in_the_event() -> None:
    event = make_event(
        headers={"content-type": "text/plain", "X-CUSTOM-THING": "v", "accept": "*/*"}
    )
    assert event.headers == {"Content-Type": "text/plain", "X-Custom-Thing": "v", "Accept": "*/*"}


def test_headers_as_pairs_and_duplicates_joined() -> None:
    event = make_event(
        headers=[("accept", "text/html"), ("ACCEPT", "application/json"), ("Accept", "*/*")]
    )
    assert event.headers == {"Accept": "text/html, application/json, */*"}


def test_duplicates_differing_only_in_case_in_a_mapping_are_joined() -> None:
    event = make_event(headers={"X-Tag": "a", "x-tag": "b"})
    assert event.headers == {"X-Tag": "a, b"}


@pytest.mark.parametrize("asked", ["content-type", "CONTENT-TYPE", "Content-Type", "cOnTeNt-TyPe"])
def test_get_header_is_case_insensitive(asked: str) -> None:
    event = make_event(headers={"CONTENT-TYPE": "text/csv"})
    assert event.get_header(asked) == "text/csv"
    assert event.get_header("X-Missing") is None


# --- body -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        " application/json ;charset=UTF-8",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
    ],
)
def test_json_content_types_are_decoded(content_type: str) -> None:
    event = make_event('{"a": [1, "é"]}'.encode(), headers={"Content-Type": content_type})
    assert event.body == {"a": [1, "é"]}
    assert event.content_type == content_type


@pytest.mark.parametrize(
    ("body", "decoded"),
    [(b"[1, 2]", [1, 2]), (b"3", 3), (b'"s"', "s"), (b"true", True), (b"null", None)],
)
def test_any_json_document_is_decoded(body: bytes, decoded: Any) -> None:
    assert make_event(body, headers={"content-type": "application/json"}).body == decoded


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe\x00garbage", b"{'a': 1}"])
def test_invalid_json_stays_bytes(body: bytes) -> None:
    event = make_event(body, headers={"Content-Type": "application/json"})
    assert event.body == body
    assert isinstance(event.body, bytes)


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "text/plain",
        "text/json",
        "application/jsonl",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
    ],
)
def test_other_content_types_stay_bytes(content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    event = make_event(b'{"a": 1}', headers=headers)
    assert event.body == b'{"a": 1}'
    assert isinstance(event.body, bytes)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_empty_body_stays_empty_bytes(content_type: str) -> None:
    event = make_event(b"", headers={"Content-Type": content_type})
    assert event.body == b""
    assert isinstance(event.body, bytes)
    assert event.size == 0


@pytest.mark.parametrize(
    "body", [b"[" * 200_000, b'{"a": ' * 100_000, b"[" * 100_000 + b"]" * 100_000]
)
def test_json_nested_too_deep_stays_bytes(body: bytes) -> None:
    """json.loads raises RecursionError (not ValueError) on such bodies: no door may crash."""
    assert decode_body(body, "application/json") is body
    event = make_event(body, headers={"Content-Type": "application/json"})
    assert event.body is body


def test_decode_body_directly() -> None:
    assert decode_body(b'{"x":1}', "application/json") == {"x": 1}
    assert decode_body(b'{"x":1}', "application/problem+json") == {"x": 1}
    assert decode_body(b'{"x":1}', "text/plain") == b'{"x":1}'
    assert decode_body(b"{", "application/json") == b"{"
    assert decode_body(b"", "application/json") == b""


# --- query ----------------------------------------------------------------------------------


def test_query_becomes_fields() -> None:
    event = make_event(path="/items", query="a=1&b=two%20words&c=&a=2&d&e=%C3%A9")
    assert event.fields == {"a": "1", "b": "two words", "c": "", "d": "", "e": "é"}
    assert event.url == "/items?a=1&b=two%20words&c=&a=2&d&e=%C3%A9"


def test_no_query() -> None:
    event = make_event(path="/p")
    assert event.fields == {}
    assert event.url == "/p"


def test_plus_in_query_is_a_space() -> None:
    assert make_event(query="q=a+b").fields == {"q": "a b"}


# --- request id -----------------------------------------------------------------------------


def test_new_request_id_is_32_hex_and_unique() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(HEX32.fullmatch(i) for i in ids)


def test_generated_request_id_when_none_given() -> None:
    ids = {make_event().id for _ in range(50)}
    assert len(ids) == 50
    assert all(HEX32.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    "given_id",
    ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace:span.1_2", "x" * 128, "A"],
)
def test_well_formed_request_id_header_is_used(given_id: str) -> None:
    assert make_event(headers={"x-request-id": given_id}).id == given_id


@pytest.mark.parametrize(
    "bad_id",
    [
        "x" * 129,
        "has space",
        "line\ninjected",
        "line\r\ninjected: yes",
        "trailing-newline\n",
        "\nleading-newline",
        "tab\there",
        'quote"d',
        "é-accent",
        "",
    ],
    ids=repr,
)
def test_malformed_request_id_is_regenerated(bad_id: str) -> None:
    event = make_event(headers={"X-Request-Id": bad_id})
    assert event.id != bad_id
    assert HEX32.fullmatch(event.id)
    assert event.headers["X-Request-Id"] == bad_id  # the header itself is left as sent


def test_explicit_request_id_wins_over_the_header() -> None:
    event = make_event(headers={"X-Request-Id": "from-header"}, request_id="from-door")
    assert event.id == "from-door"


# --- the other attributes -------------------------------------------------------------------


def test_event_attributes() -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    event = make_event(
        b"hello",
        method="POST",
        path="/api/run",
        headers={"content-type": "text/plain; charset=utf-8"},
        query="x=1",
        trigger_kind="nuclio",
        trigger_name="my-trigger",
    )
    after = datetime.datetime.now(datetime.timezone.utc)
    assert event.body == b"hello"
    assert event.method == "POST"
    assert event.path == "/api/run"
    assert event.url == "/api/run?x=1"
    assert event.trigger.kind == "nuclio"
    assert event.trigger.name == "my-trigger"
    assert event.size == 5
    assert event.content_type == "text/plain; charset=utf-8"
    assert event.timestamp.tzinfo is not None
    assert event.timestamp.utcoffset() == datetime.timedelta(0)
    assert before <= event.timestamp <= after


def test_event_defaults() -> None:
    event = make_event()
    assert event.body == b""
    assert event.method == "GET"
    assert event.path == "/"
    assert event.url == "/"
    assert event.trigger.kind == "http"
    assert event.trigger.name == ""
    assert event.headers == {}
    assert event.fields == {}
    assert event.content_type == ""
    assert event.size == 0


def test_size_is_the_raw_body_length_even_when_decoded() -> None:
    body = '{"k": "é"}'.encode()
    event = make_event(body, headers={"Content-Type": "application/json"})
    assert event.body == {"k": "é"}
    assert event.size == len(body) == 11


@pytest.mark.parametrize("kind", ["http", "nuclio", "job"])
def test_trigger_kinds(kind: str) -> None:
    assert make_event(trigger_kind=kind).trigger.kind == kind

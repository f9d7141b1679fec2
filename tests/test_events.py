"""wrapper.events: the Event every door hands the handler (DESIGN §4, "Events in")."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cloudevents_cases import BINARY_01, NOW, STRUCTURED_01
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


def test_json_is_decoded_for_exactly_application_json() -> None:
    event = make_event('{"a": [1, "é"]}'.encode(), headers={"Content-Type": "application/json"})
    assert event.body == {"a": [1, "é"]}
    assert event.content_type == "application/json"


@pytest.mark.parametrize(
    ("body", "decoded"),
    [(b"[1, 2]", [1, 2]), (b"3", 3), (b'"s"', "s"), (b"true", True), (b"null", None)],
)
def test_any_json_document_is_decoded(body: bytes, decoded: Any) -> None:
    assert make_event(body, headers={"content-type": "application/json"}).body == decoded


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"{'a': 1}",
        b'\xef\xbb\xbf{"bom": 1}',  # Nuclio decodes as UTF-8 first: a BOM fails, as there
        '{"utf16": 1}'.encode("utf-16"),
    ],
)
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
        # Nuclio's rule (nuclio_sdk/event.py): exactly `application/json`, nothing else
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "APPLICATION/JSON",
        "Application/Json",
        " application/json",
        "application/json ",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
        "application/problem+json",
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
    assert decode_body(b'{"x":1}', "application/problem+json") == b'{"x":1}'
    assert decode_body(b'{"x":1}', "application/json; charset=utf-8") == b'{"x":1}'
    assert decode_body(b'{"x":1}', "text/plain") == b'{"x":1}'
    assert decode_body(b"{", "application/json") == b"{"
    assert decode_body(b"", "application/json") == b""


# --- query ----------------------------------------------------------------------------------


def test_query_becomes_fields() -> None:
    event = make_event(path="/items", query="a=1&b=two%20words&c=&a=2&d&e=%C3%A9")
    assert event.fields == {"a": "2", "b": "two words", "c": "", "d": "", "e": "é"}
    assert event.url == "/items?a=1&b=two%20words&c=&a=2&d&e=%C3%A9"


def test_no_query() -> None:
    event = make_event(path="/p")
    assert event.fields == {}
    assert event.url == "/p"


def test_plus_in_query_is_a_space() -> None:
    assert make_event(query="q=a+b").fields == {"q": "a b"}


def test_a_repeated_query_parameter_gives_its_last_value() -> None:
    """As Nuclio's HTTP trigger: fasthttp's QueryArgs visited into a map (http/event.go)."""
    assert make_event(query="x=1&x=2").fields == {"x": "2"}
    assert make_event(query="x=1&y=0&x=&x=3").fields == {"x": "3", "y": "0"}


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


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_event_attributes() -> None:
    before = utcnow()
    event = make_event(
        b"hello",
        method="POST",
        path="/api/run",
        headers={"content-type": "text/plain; charset=utf-8"},
        query="x=1",
        trigger_kind="nuclio",
        trigger_name="my-trigger",
    )
    after = utcnow()
    assert event.body == b"hello"
    assert event.method == "POST"
    assert event.path == "/api/run"
    assert event.url == "/api/run?x=1"
    assert event.trigger.kind == "nuclio"
    assert event.trigger.name == "my-trigger"
    assert event.size == 5
    assert event.content_type == "text/plain; charset=utf-8"
    assert event.timestamp.tzinfo is None  # naive UTC, as Nuclio's wrapper gives
    assert before <= event.timestamp <= after


@pytest.mark.parametrize("kind", ["http", "job"])
def test_a_handler_can_subtract_the_timestamp_from_utcnow(kind: str) -> None:
    event = make_event(trigger_kind=kind)
    age = utcnow() - event.timestamp  # TypeError if the timestamp were aware
    assert datetime.timedelta(0) <= age < datetime.timedelta(seconds=5)


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
    # what Nuclio's HTTP trigger leaves in the fields it does not fill (nuclio-sdk-go's
    # AbstractEvent, through the processor's encoder): never None
    assert event.shard_id == -1
    assert event.num_shards == 0
    assert (event.type, event.type_version, event.version, event.topic) == ("", "", "", "")
    assert event.last_in_batch is False
    assert event.offset == 0


def test_size_is_the_raw_body_length_even_when_decoded() -> None:
    body = '{"k": "é"}'.encode()
    event = make_event(body, headers={"Content-Type": "application/json"})
    assert event.body == {"k": "é"}
    assert event.size == len(body) == 11


@pytest.mark.parametrize("kind", ["http", "nuclio", "job"])
def test_trigger_kinds(kind: str) -> None:
    assert make_event(trigger_kind=kind).trigger.kind == kind


# --- CloudEvents ----------------------------------------------------------------------------

MOMENT = datetime.datetime(2024, 5, 6, 7, 8, 9)

STRUCTURED_10 = {
    "specversion": "1.0",
    "type": "com.example.someevent",
    "source": "/mycontext",
    "id": "A234-1234-1234",
    "time": NOW,
    "datacontenttype": "application/json",
    "subject": "thing",
    "comexampleextension": "value",
    "data": {"a": [1, 2]},
}
BINARY_10 = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-type": "com.example.someevent",
    "ce-source": "/my%20context",
    "ce-id": "A234-1234-1234",
    "ce-time": "2024-05-06T09:08:09.5+02:00",
    "ce-comexampleextension": "value",
}


def structured(document: Any, content_type: str = "application/cloudevents+json") -> Any:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return make_event(
        body, method="POST", path="/p", query="q=1", headers={"Content-Type": content_type}
    )


def assert_http_parts_kept(event: Any, method: str = "POST") -> None:
    """Nuclio's wrappers keep the request's method, path, url and query fields."""
    assert (event.method, event.path, event.url, event.fields) == (
        method,
        "/p",
        "/p?q=1",
        {"q": "1"},
    )


def test_structured_cloud_event_0_1_as_nuclio_maps_it() -> None:
    event = structured(STRUCTURED_01)
    assert event.body == b"valid xml"
    assert event.size == 9
    assert event.content_type == "text/xml"
    assert (event.trigger.kind, event.trigger.name) == ("/mycontext", "/mycontext")
    assert (event.type, event.type_version, event.version) == (
        "com.example.someevent",
        "1.0",
        "0.1",
    )
    assert event.id == "A234-1234-1234"
    assert event.timestamp == MOMENT
    assert event.headers == {"comExampleExtension": "value"}  # the extensions, not HTTP's
    assert_http_parts_kept(event)
    assert (event.shard_id, event.num_shards, event.offset, event.topic) == (-1, 0, 0, "")


def test_binary_cloud_event_0_1_as_nuclio_maps_it() -> None:
    event = make_event(b"valid xml", method="POST", path="/p", query="q=1", headers=BINARY_01)
    assert event.body == b"valid xml"
    assert event.content_type == "text/xml"
    assert (event.trigger.kind, event.trigger.name) == ("/mycontext", "")  # name: CE-Name
    assert (event.type, event.type_version, event.version) == (
        "com.example.someevent",
        "1.0",
        "0.1",
    )
    assert event.id == "A234-1234-1234"
    assert event.timestamp == MOMENT
    assert event.headers["Ce-Eventid"] == "A234-1234-1234"  # the HTTP headers stay
    assert_http_parts_kept(event)


def test_binary_0_1_trigger_name_from_ce_name() -> None:
    event = make_event(headers={**BINARY_01, "CE-Name": "orders"})
    assert (event.trigger.kind, event.trigger.name) == ("/mycontext", "orders")


def test_structured_cloud_event_1_0() -> None:
    event = structured(STRUCTURED_10)
    assert event.body == {"a": [1, 2]}
    assert event.size == 0  # as Nuclio for object data: no bytes were given
    assert event.content_type == "application/json"
    assert (event.trigger.kind, event.trigger.name) == ("/mycontext", "/mycontext")
    assert (event.type, event.type_version, event.version) == ("com.example.someevent", "", "1.0")
    assert event.id == "A234-1234-1234"
    assert event.timestamp == MOMENT
    assert event.headers == {"subject": "thing", "comexampleextension": "value"}
    assert_http_parts_kept(event)


def test_binary_cloud_event_1_0() -> None:
    event = make_event(b'{"a": 1}', method="POST", path="/p", query="q=1", headers=BINARY_10)
    assert event.body == {"a": 1}
    assert event.size == 8
    assert (event.trigger.kind, event.trigger.name) == ("/my context", "/my context")
    assert (event.type, event.type_version, event.version) == ("com.example.someevent", "", "1.0")
    assert event.id == "A234-1234-1234"
    assert event.timestamp == datetime.datetime(2024, 5, 6, 7, 8, 9, 500_000)
    assert event.headers["Ce-Comexampleextension"] == "value"
    assert_http_parts_kept(event)


@pytest.mark.parametrize(
    ("data", "content_type", "body", "size"),
    [
        ({"data": "valid xml"}, "text/xml", b"valid xml", 9),
        ({"data": '{"a": 1}'}, "application/json", {"a": 1}, 8),  # text then Nuclio's JSON rule
        ({"data": '{"a": 1}'}, "application/json; charset=utf-8", b'{"a": 1}', 8),
        ({"data": {"a": 1}}, "text/plain", {"a": 1}, 0),
        ({"data": [1, 2]}, "", [1, 2], 0),
        ({"data": 3}, "", 3, 0),
        ({"data": None}, "", b"", 0),
        ({}, "", b"", 0),
        ({"data_base64": "AAEC/w=="}, "application/octet-stream", b"\x00\x01\x02\xff", 4),
        ({"data_base64": "eyJhIjogMX0="}, "application/json", {"a": 1}, 8),
    ],
)
def test_structured_1_0_data(data: dict[str, Any], content_type: str, body: Any, size: int) -> None:
    document = {"specversion": "1.0", "id": "x", "source": "s", "type": "t", **data}
    if content_type:
        document["datacontenttype"] = content_type
    event = structured(document)
    assert (event.body, event.size, event.content_type) == (body, size, content_type)


def test_structured_0_1_attribute_names_are_case_blind_as_go_decodes_them() -> None:
    event = structured({"EventId": "e-1", "SOURCE": "src", "eventtype": "t", "Data": "x"})
    assert (event.id, event.trigger.kind, event.type, event.body) == ("e-1", "src", "t", b"x")


def test_structured_0_1_offset_and_empty_attributes() -> None:
    event = structured({"source": "s", "offset": 7, "extensions": None, "eventID": None})
    assert event.offset == 7
    assert event.headers == {}
    assert event.version == ""
    assert HEX32.fullmatch(event.id)  # no CloudEvent id: the request id stays


def test_structured_content_type_prefix_is_nuclios() -> None:
    for content_type in (
        "application/cloudevents+json",
        "application/cloudevents+json; charset=utf-8",
        "application/cloudevents",
    ):
        assert structured(STRUCTURED_01, content_type).trigger.kind == "/mycontext"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",  # a batch (application/cloudevents-batch+json also starts with the prefix)
        b'"text"',
        b"null",
        b"",
        b"[" * 100_000,
        json.dumps({**STRUCTURED_01, "eventID": 5}).encode(),
        json.dumps({**STRUCTURED_01, "source": ["a"]}).encode(),
        json.dumps({**STRUCTURED_01, "eventTime": 1700000000}).encode(),
        json.dumps({**STRUCTURED_01, "extensions": ["a"]}).encode(),
        json.dumps({**STRUCTURED_01, "offset": "7"}).encode(),
        json.dumps({**STRUCTURED_01, "offset": True}).encode(),
        json.dumps({**STRUCTURED_10, "specversion": 1.0}).encode(),
        json.dumps({**STRUCTURED_10, "id": None, "type": {"a": 1}}).encode(),
        json.dumps({**STRUCTURED_10, "data_base64": "not base64!"}).encode(),
        json.dumps({**STRUCTURED_10, "data_base64": 5}).encode(),
    ],
    ids=lambda body: repr(body[:40]),
)
def test_a_malformed_structured_cloud_event_is_the_plain_http_event(body: bytes) -> None:
    """Nuclio answers 500 without calling the handler; here the handler gets the request."""
    event = make_event(
        body,
        method="POST",
        headers={"Content-Type": "application/cloudevents+json", "X-Request-Id": "req-1"},
    )
    assert event.body is body
    assert event.content_type == "application/cloudevents+json"
    assert event.headers == {
        "Content-Type": "application/cloudevents+json",
        "X-Request-Id": "req-1",
    }
    assert (event.id, event.trigger.kind, event.type, event.version) == ("req-1", "http", "", "")


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_no_structured_body_makes_make_event_raise(body: bytes) -> None:
    event = make_event(body, headers={"Content-Type": "application/cloudevents+json"})
    assert isinstance(event.timestamp, datetime.datetime)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "specversion",
                "id",
                "source",
                "type",
                "time",
                "datacontenttype",
                "data",
                "data_base64",
                "eventID",
                "eventTime",
                "extensions",
                "offset",
                "contentType",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=20)
        | st.lists(st.integers(), max_size=2),
    )
)
def test_no_structured_document_makes_make_event_raise(document: dict[str, Any]) -> None:
    event = structured(document)
    assert event.timestamp.tzinfo is None
    assert isinstance(event.id, str) and event.id


def test_the_cloud_event_id_is_the_event_id_only_when_well_formed() -> None:
    event = structured({**STRUCTURED_10, "id": "bad id\r\nX-Injected: 1"})
    assert HEX32.fullmatch(event.id)
    assert event.type == "com.example.someevent"  # the rest is mapped
    headers = {**BINARY_01, "CE-EventID": "", "X-Request-Id": "req-7"}
    assert make_event(headers=headers).id == "req-7"


def test_an_explicit_request_id_wins_over_the_cloud_event_id() -> None:
    assert make_event(headers=BINARY_01, request_id="run-1").id == "run-1"


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-05-06T07:08:09Z", MOMENT),
        ("2024-05-06t07:08:09z", MOMENT),
        ("2024-05-06T09:38:09+02:30", MOMENT),
        ("2024-05-06T02:08:09-05:00", MOMENT),
        ("2024-05-06T07:08:09.123456789Z", MOMENT.replace(microsecond=123456)),
        ("2024-05-06T07:08:09.1Z", MOMENT.replace(microsecond=100000)),
        ("2024-05-07T00:30:00+01:00", datetime.datetime(2024, 5, 6, 23, 30)),
    ],
)
def test_cloud_event_times_become_naive_utc(text: str, moment: datetime.datetime) -> None:
    assert make_event(headers={**BINARY_01, "CE-EventTime": text}).timestamp == moment
    assert structured({**STRUCTURED_10, "time": text}).timestamp == moment


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2024-05-06", "2024-05-06T07:08:09", "2024-05-06 07:08:09Z",
     "2024-13-06T07:08:09Z", "2024-05-06T07:08:60Z", "0001-01-01T00:00:00+01:00",
     "\uff12\uff10\uff12\uff14-05-06T07:08:09Z"],
)  # fmt: skip
def test_an_absent_or_invalid_cloud_event_time_is_the_arrival_time(text: str) -> None:
    """Nuclio gives Go's zero time (year 1) in binary mode, refuses the event in structured
    mode; here, in both, the time the request arrived (our nuclio door too)."""
    before = utcnow()
    for event in (
        make_event(headers={**BINARY_01, "CE-EventTime": text}),
        structured({**STRUCTURED_01, "eventTime": text}),
    ):
        assert event.version == "0.1"  # still a CloudEvent
        assert before <= event.timestamp <= utcnow()


def test_binary_mode_needs_a_non_empty_version_header() -> None:
    """Nuclio checks `GetHeaderString("CE-CloudEventsVersion") != ""` (trigger.go)."""
    event = make_event(headers={**BINARY_01, "CE-CloudEventsVersion": ""})
    assert (event.trigger.kind, event.type, event.version) == ("http", "", "")
    assert make_event(headers={"ce-specversion": "", "ce-id": "x"}).trigger.kind == "http"


def test_structured_mode_wins_over_binary_and_0_1_over_1_0() -> None:
    both = {**BINARY_01, "Content-Type": "application/cloudevents+json"}
    event = make_event(json.dumps(STRUCTURED_10).encode(), headers=both)
    assert event.version == "1.0" and event.body == {"a": [1, 2]}
    event = make_event(b"x", headers={**BINARY_10, **BINARY_01})
    assert event.version == "0.1"

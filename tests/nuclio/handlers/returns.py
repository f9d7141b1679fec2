"""A handler returning the value its event's path names, and the table of those values.

tests/nuclio/test_nuclio_fidelity.py imports RETURNS and derives Nuclio's answer to each
value from nuclio-sdk itself; the nuclio door runs this file as the handler module.
"""

import nuclio_sdk

RETURNS = {
    "str": "a string",
    "bytes": b"hello",
    "bytes-not-utf8": b"\xff\x00",
    "none": None,
    "int": 5,
    "float": 1.5,
    "bool": True,
    "dict": {"a": "dict", "b": [1, 2]},
    "dict-with-nan": {"v": float("nan")},
    "dict-with-infinity": {"v": float("inf")},
    "dict-not-ascii": {"name": "café"},
    "dict-with-bytes": {"b": b"x"},
    "list-of-dicts": [{"a": 1}, {"b": 2}],
    "list-of-ints": [1, 2, 3],
    "status-and-str": (201, "s"),
    "status-and-dict": (201, {"a": 1}),
    "status-and-bytes": (201, b"x"),
    "response-dict": nuclio_sdk.Response(body={"a": 1}),
    "response-bytes": nuclio_sdk.Response(body=b"raw", content_type="image/png"),
    "response-int": nuclio_sdk.Response(body=5),
    "response-no-ack": nuclio_sdk.Response(body="kept", headers={"x-nuclio-stream-no-ack": True}),
    "response-typed-headers": nuclio_sdk.Response(
        body="typed", headers={"X-Count": 5, "X-Ratio": 0.5, "X-Name": "n"}
    ),
}


def handler(context, event):
    return RETURNS[event.path.lstrip("/")]

"""code_src URIs: every form parses to what the fetchers need; bad ones are clear errors."""

from __future__ import annotations

import pytest

from wrapper.errors import SourceError
from wrapper.sources.uri import parse_source_uri

PIN = "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("src/func.py", {"transport": "", "location": "src/func.py"}),
        (f"fn.zip#sha256={PIN}", {"transport": "", "location": "fn.zip", "sha256": PIN}),
        ("file:///srv/a%20b/f.py", {"transport": "file", "location": "/srv/a b/f.py"}),
        ("file://localhost/srv/f.py", {"transport": "file", "location": "/srv/f.py"}),
        (
            f"https://u:p%40ss@Host.example:8443/d/f.py?v=1#sha256={PIN.upper()}",
            {
                "transport": "https",
                "location": "https://host.example:8443/d/f.py?v=1",
                "username": "u",
                "password": "p@ss",
                "sha256": PIN,
            },
        ),
        ("zip+http://h/fn", {"transport": "http", "location": "http://h/fn", "archive": "zip"}),
        ("tar+s3://b/k.tgz", {"transport": "s3", "location": "s3://b/k.tgz", "archive": "tar"}),
        ("s3://bucket/prefix/", {"transport": "s3", "location": "s3://bucket/prefix/"}),
        (
            "git+https://tok@github.com/o/r.git#v1.2:src/app/",
            {
                "transport": "https",
                "location": "https://github.com/o/r.git",
                "git": True,
                "username": "tok",
                "ref": "v1.2",
                "subdir": "src/app",
            },
        ),
        ("git+https://h/r", {"git": True, "ref": None, "subdir": None}),
        ("https://[::1]:8080/f.py", {"location": "https://[::1]:8080/f.py"}),
    ],
)
def test_forms(text: str, expected: dict[str, object]) -> None:
    uri = parse_source_uri(text)
    for name, value in expected.items():
        assert getattr(uri, name) == value, name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://h/f.py", "unsupported scheme 'ftp'"),
        ("zip+git+https://h/r", "unsupported scheme 'zip+git+https'"),
        ("git+s3://b/k", "git sources use git+https://"),
        ("file://otherhost/f.py", "a file:// URI cannot name host 'otherhost'"),
        ("https://h/f.py#sha256=abc", "the fragment must be #sha256=<64 hex digits>"),
        ("https://h/f.py#main", "the fragment must be #sha256=<64 hex digits>"),
    ],
)
def test_refusals(text: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_source_uri(text)
    assert message in caught.value.message


def test_credentials_are_hidden_from_repr_and_shown_form() -> None:
    uri = parse_source_uri("git+https://user:hunter2@h/r#main")
    assert "hunter2" not in repr(uri)
    assert uri.shown == "git+https://***@h/r#main"

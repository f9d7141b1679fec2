"""`code_src` URIs: scheme, transport, forced archive kind, credentials and fragment (DESIGN §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from wrapper.errors import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SHA256 = re.compile(r"sha256=([0-9a-fA-F]{64})")
TRANSPORTS = ("file", "http", "https", "s3")
ARCHIVE_PREFIXES = ("zip", "tar")


def uri_scheme(uri: str) -> str:
    """The lower-cased scheme of a URI (`zip+https`, `file`, ...), or "" for a plain path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
"""A URL's scheme and user:password part, wherever it stands in a text."""


def redact_uri(text: str) -> str:
    """`text` (a URI, or a requirement such as `pkg @ https://...`) with every URL's
    user:password part hidden, fit for logs and error messages."""
    return _USERINFO.sub(r"\1***@", text)


def has_credentials(text: str) -> bool:
    """Whether a URL in `text` carries a user:password part."""
    return _USERINFO.search(text) is not None


@dataclass(frozen=True)
class SourceURI:
    """A parsed `code_src`. `location` is what to fetch (a URL without credentials or
    fragment, or a local path)."""

    text: str = field(repr=False)
    transport: str
    location: str
    archive: Optional[str] = None
    git: bool = False
    username: Optional[str] = field(default=None, repr=False)
    password: Optional[str] = field(default=None, repr=False)
    sha256: Optional[str] = None
    ref: Optional[str] = None
    subdir: Optional[str] = None

    @property
    def shown(self) -> str:
        """The URI as messages may show it (credentials hidden)."""
        return redact_uri(self.text)


def parse_source_uri(text: str) -> SourceURI:
    """Parse a `code_src` value: a local path, `file://`, `http(s)://`, `zip+` / `tar+` archives,
    `git+https://host/repo#ref:subdir`, `s3://bucket/key`; `#sha256=<hex>` pins the content."""
    scheme = uri_scheme(text)
    if not scheme:
        path, _, fragment = text.partition("#sha256=")
        pin = f"sha256={fragment}" if fragment else ""
        return SourceURI(text, "", path, sha256=_pin(pin, text))
    *prefixes, transport = scheme.split("+")
    git = prefixes == ["git"]
    archive = prefixes[0] if len(prefixes) == 1 and prefixes[0] in ARCHIVE_PREFIXES else None
    if transport not in TRANSPORTS or len(prefixes) > 1 or (prefixes and not (git or archive)):
        raise SourceError(
            f"code_src {redact_uri(text)!r}: unsupported scheme {scheme!r} ({_FORMS})"
        )
    if git and transport not in ("http", "https"):
        raise SourceError(f"code_src {redact_uri(text)!r}: git sources use git+https://")
    parts = urlsplit(f"{transport}://{text[len(scheme) + 3 :]}")
    host = parts.hostname or ""
    if transport == "file":
        if host not in ("", "localhost"):
            raise SourceError(
                f"code_src {redact_uri(text)!r}: a file:// URI cannot name host {host!r}"
            )
        return SourceURI(text, "file", unquote(parts.path), sha256=_pin(parts.fragment, text))
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    location = urlunsplit((transport, netloc, parts.path, parts.query, ""))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if git:
        ref, _, subdir = unquote(parts.fragment).partition(":")
        return SourceURI(
            text,
            transport,
            location,
            git=True,
            username=username,
            password=password,
            ref=ref or None,
            subdir=subdir.strip("/") or None,
        )
    return SourceURI(
        text,
        transport,
        location,
        archive=archive,
        username=username,
        password=password,
        sha256=_pin(parts.fragment, text),
    )


def _pin(fragment: str, text: str) -> Optional[str]:
    if not fragment:
        return None
    match = _SHA256.fullmatch(fragment)
    if not match:
        raise SourceError(
            f"code_src {redact_uri(text)!r}: the fragment must be #sha256=<64 hex digits>"
        )
    return match.group(1).lower()


_FORMS = (
    "forms: path, file://, http(s)://, zip+http(s)://, tar+http(s)://, git+https://, "
    "s3://, zip+s3://, tar+s3://"
)

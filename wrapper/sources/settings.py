"""How sources are fetched: limits, the code cache, and credentials scoped to their hosts."""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

MiB = 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on every download: time (connect, each read, whole transfer), size, redirects."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0
    max_download_bytes: int = 256 * MiB
    max_redirects: int = 5

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FetchLimits:
        """The limits the `FN_WRAPPER_*` twins of the download flags set (defaults for the
        rest): how reads that do not get the parsed settings (entity content) are bounded."""
        from wrapper.settings import byte_size, count, seconds

        fields = {
            "connect_timeout": ("CONNECT_TIMEOUT", seconds),
            "read_timeout": ("READ_TIMEOUT", seconds),
            "total_timeout": ("DOWNLOAD_TIMEOUT", seconds),
            "max_download_bytes": ("MAX_DOWNLOAD_SIZE", byte_size),
            "max_redirects": ("MAX_REDIRECTS", count),
        }
        given: dict[str, Any] = {}
        for name, (twin, parse) in fields.items():
            text = environ.get(f"FN_WRAPPER_{twin}")
            if text:
                try:
                    given[name] = parse(text)
                except ValueError as exc:
                    raise ValueError(f"FN_WRAPPER_{twin}: {exc}") from None
        return cls(**given)


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied while unpacking."""

    max_members: int = 20_000
    max_unpacked_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    """A user name and secret that may be sent only to `hosts` (`host` or `host:port`)."""

    username: str
    password: str = field(repr=False)
    hosts: tuple[str, ...] = ()

    def allowed_for(self, url: str) -> bool:
        """True when `url`'s host and port are among the hosts these credentials belong to."""
        return origin_of(url) in {_with_port(h, url) for h in self.hosts}


def origin_of(url: str) -> str:
    """`host:port` of a URL (the scheme's default port when none is written), lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[-1].lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    return f"{(parts.hostname or '').lower()}:{port}"


def _with_port(host: str, url: str) -> str:
    """A configured `host` or `host:port` in `origin_of` form (default port from `url`)."""
    if ":" in host:
        return host.lower()
    scheme = urlsplit(url).scheme.split("+")[-1].lower()
    return f"{host.lower()}:{DEFAULT_PORTS.get(scheme, 0)}"


@dataclass(frozen=True)
class SourceSettings:
    """Everything materialising a source may use besides the source fields themselves."""

    cache_dir: Optional[Path] = None
    limits: FetchLimits = field(default_factory=FetchLimits)
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    git_credentials: Optional[Credentials] = None
    allow_git_http: bool = False


def git_credentials_from(environ: Mapping[str, str], hosts: str) -> Optional[Credentials]:
    """`GIT_USERNAME`/`GIT_PASSWORD` or `GIT_TOKEN` (user `GIT_USERNAME`, else `oauth2`),
    scoped to the comma-separated `hosts`; None when no secret is set."""
    secret = environ.get("GIT_TOKEN") or environ.get("GIT_PASSWORD")
    if not secret:
        return None
    scoped = tuple(h.strip() for h in hosts.split(",") if h.strip())
    return Credentials(environ.get("GIT_USERNAME") or "oauth2", secret, scoped)


TRUST_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def tls_context(*specific: str) -> ssl.SSLContext:
    """The TLS context of an https reader: the system's roots (or the bundle SSL_CERT_FILE
    names, which OpenSSL reads itself) plus the bundles the `specific` variables (a reader's
    own, e.g. GIT_SSL_CAINFO) and REQUESTS_CA_BUNDLE name."""
    context = ssl.create_default_context()
    for name in (*specific, "REQUESTS_CA_BUNDLE"):
        bundle = os.environ.get(name)
        if bundle:
            try:
                context.load_verify_locations(cafile=bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"{name}={bundle!r}: not a readable CA bundle ({exc})") from None
    return context


def proxy_for(url: str) -> Optional[str]:
    """The proxy `url` goes through: the scheme's `*_proxy` variable unless NO_PROXY names
    its host (urllib's reading of them, as curl and requests do)."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme.split("+")[-1].lower())
    if not proxy or urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2]):
        return None
    return proxy

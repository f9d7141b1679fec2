"""Source settings: limits from flags and twins, and git credentials scoped to their hosts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import pytest

from wrapper.config import source_settings
from wrapper.settings import SOURCE_OPTIONS, byte_size, resolve
from wrapper.sources.settings import Credentials, git_credentials_from, origin_of


def settings_for(argv: list[str], environ: Optional[dict[str, str]] = None):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    for option in SOURCE_OPTIONS:
        option.add_to(parser)
    environ = environ or {}
    return source_settings(resolve(vars(parser.parse_args(argv)), SOURCE_OPTIONS, environ), environ)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1048576", 1048576),
        ("64KiB", 65536),
        ("512MiB", 512 * 1024**2),
        ("1G", 10**9),
        ("2gb", 2 * 10**9),
        ("10 k", 10_000),
    ],
)
def test_byte_sizes(text: str, value: int) -> None:
    assert byte_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1.5G", "-1", "1TiB"])
def test_bad_byte_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        byte_size(text)


def test_defaults() -> None:
    settings = settings_for([])
    assert settings.limits.max_download_bytes == 256 * 1024**2
    assert settings.limits.connect_timeout == 10.0
    assert settings.limits.total_timeout == 300.0
    assert settings.archive_limits.max_unpacked_bytes == 512 * 1024**2
    assert settings.archive_limits.max_members == 20_000
    assert settings.git_credentials is None and not settings.allow_git_http
    assert settings.cache_dir is None


def test_flags_and_twins() -> None:
    settings = settings_for(
        ["--max-download-size", "1MiB", "--read-timeout", "2.5", "--cache-dir", "/tmp/c"],
        {
            "FN_WRAPPER_MAX_ARCHIVE_MEMBERS": "10",
            "FN_WRAPPER_ALLOW_GIT_HTTP": "true",
            "FN_WRAPPER_MAX_DOWNLOAD_SIZE": "5MiB",
        },
    )
    assert settings.limits.max_download_bytes == 1024**2  # the flag wins over its twin
    assert settings.limits.read_timeout == 2.5
    assert settings.archive_limits.max_members == 10
    assert settings.allow_git_http is True
    assert settings.cache_dir == Path("/tmp/c")


def test_git_credentials_are_scoped_to_the_configured_hosts() -> None:
    settings = settings_for(
        ["--git-credential-hosts", "github.com, git.example.org:8443"],
        {"GIT_TOKEN": "ghp_token"},
    )
    creds = settings.git_credentials
    assert creds is not None and (creds.username, creds.password) == ("oauth2", "ghp_token")
    assert creds.allowed_for("https://github.com/org/repo.git")
    assert creds.allowed_for("https://GitHub.com:443/org/repo.git")
    assert creds.allowed_for("https://git.example.org:8443/x")
    assert not creds.allowed_for("https://git.example.org/x")
    assert not creds.allowed_for("https://evil.example/x")
    assert not creds.allowed_for("http://github.com:8080/x")
    assert "ghp_token" not in repr(creds) and "ghp_token" not in repr(settings)


def test_unscoped_credentials_go_nowhere() -> None:
    creds = git_credentials_from({"GIT_USERNAME": "me", "GIT_PASSWORD": "pw"}, "")
    assert creds == Credentials("me", "pw", ())
    assert not creds.allowed_for("https://github.com/x")
    assert git_credentials_from({"GIT_USERNAME": "me"}, "github.com") is None


def test_origins() -> None:
    assert origin_of("https://Host.example/x") == "host.example:443"
    assert origin_of("git+http://h:8080/r") == "h:8080"
    assert origin_of("http://[::1]/x") == "::1:80"

"""Secrets kept out of log lines: the values to mask, found in one place, and the masking.

Masking works on a record's fields (message, exception text, `with` values) before any
encoding, so a secret holding quotes, backslashes or control characters cannot slip through
escaped in a JSON line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Callable, Optional

CREDENTIAL_VARIABLES = (
    "GIT_TOKEN",
    "GIT_USERNAME",
    "GIT_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
"""Variables whose values never appear in a log line: the git credentials (DESIGN §3) and the
S3 keys, of code sources and of the store alike."""

SECRET_VARIABLES_SETTING = "FN_WRAPPER_SECRET_VARIABLES"
"""Comma-separated names of more variables whose values are secrets (set by an operator)."""

MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: `***` for every `on` or `1` would ruin a log, and hide little."""

MASK = "***"

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#]*@")


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values to mask: the credential variables' and those the operator names."""
    named = environ.get(SECRET_VARIABLES_SETTING, "")
    names = [*CREDENTIAL_VARIABLES, *(n.strip() for n in named.split(",") if n.strip())]
    values = {environ.get(name, "") for name in names}
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def mask_url_credentials(text: str) -> str:
    """`scheme://user:pass@host` → `scheme://***@host`, wherever a URL sits in `text`."""
    if "://" not in text or "@" not in text:
        return text
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def _forms(secret: str) -> tuple[str, ...]:
    """The secret and the escaped forms a message may quote it in (`{value!r}`, JSON)."""
    return (
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    )


class Redaction:
    """Masks a set of secret values, and credentials in URLs, in text and in nested values."""

    def __init__(self, secrets: list[str]) -> None:
        forms = {form for s in secrets if len(s) >= MIN_SECRET_LENGTH for form in _forms(s)}
        kept = sorted(forms, key=len, reverse=True)
        self._pattern: Optional[re.Pattern[str]] = (
            re.compile("|".join(re.escape(s) for s in kept)) if kept else None
        )

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> Redaction:
        return cls(secret_values(os.environ if environ is None else environ))

    def text(self, text: str) -> str:
        """`text` with every secret value and every URL's credentials replaced by `***`."""
        if self._pattern is not None:
            count = 1
            while count:  # a secret may hold `***`: mask until none is left (each pass shortens)
                text, count = self._pattern.subn(MASK, text)
        return mask_url_credentials(text)

    def value(self, value: Any, to_text: Callable[[Any], str] = repr) -> Any:
        """A JSON-ready copy of `value` with strings masked, recursively through dicts, lists and
        tuples; any other object becomes its masked `to_text` (so a repr hides nothing)."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, Mapping):
            return {self._key(k, to_text): self.value(v, to_text) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item, to_text) for item in value]
        return self.text(to_text(value))

    def _key(self, key: Any, to_text: Callable[[Any], str]) -> Any:
        if key is None or isinstance(key, (bool, int, float)):
            return key
        return self.text(key if isinstance(key, str) else to_text(key))

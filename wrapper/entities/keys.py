"""Entity keys: `store://<project>/<entity_type>/<kind>/<name>[:<id>]` (DESIGN §5).

A key names one version of an entity (with `:<id>`) or its latest version (without). Its
parts are names that are safe as path segments and in URLs: a letter or digit first, then
letters, digits, `.`, `_`, `-` and `+`, at most 128 characters; an id likewise. A malformed key
is a SpecError (exit 2) that names the field, the key and what is wrong with it.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from wrapper.errors import SpecError

SCHEME = "store://"
ENTITY_TYPES = ("dataitem", "artifact", "model", "function")
GRAMMAR = "store://<project>/<entity_type>/<kind>/<name>[:<id>]"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
NAME_RULE = "letters, digits, . _ + -; a letter or digit first; at most 128"
_PARTS = ("project", "entity_type", "kind", "name")


class EntityKey(NamedTuple):
    """A parsed entity key; `str(key)` prints it back."""

    project: str
    entity_type: str
    kind: str
    name: str
    id: Optional[str] = None

    @classmethod
    def parse(cls, text: str, field: str = "key") -> EntityKey:
        """Parse `text`; a malformed key is a SpecError naming `field`, the key and the fault."""

        def bad(reason: str) -> SpecError:
            return SpecError(f"{field}: {text!r} is not an entity key: {reason} ({GRAMMAR})")

        if not isinstance(text, str):
            kind = type(text).__name__
            raise SpecError(f"{field}: expected an entity key ({GRAMMAR}), got {kind}")
        if not text.startswith(SCHEME):
            raise bad("it does not start with store://")
        parts = text[len(SCHEME) :].split("/")
        if len(parts) != 4:
            raise bad(f"it has {len(parts)} part(s) after store://, not 4")
        name, colon, version = parts[3].partition(":")
        values = [*parts[:3], name]
        for part, value in zip(_PARTS, values):
            if not _NAME.fullmatch(value):
                raise bad(f"{part} {value!r} is not a name ({NAME_RULE})")
        if values[1] not in ENTITY_TYPES:
            raise bad(f"entity type {values[1]!r} is not one of {', '.join(ENTITY_TYPES)}")
        if colon and not _NAME.fullmatch(version):
            raise bad(f"id {version!r} is not an id ({NAME_RULE})")
        project, entity_type, kind = parts[:3]
        return cls(project, entity_type, kind, name, version or None)

    def __str__(self) -> str:
        version = f":{self.id}" if self.id else ""
        return f"{SCHEME}{self.project}/{self.entity_type}/{self.kind}/{self.name}{version}"

    def latest(self) -> EntityKey:
        """The key of this entity's latest version (no id)."""
        return self._replace(id=None)


def is_key(text: str) -> bool:
    """Whether `text` is meant as a key (else it is an entity's name)."""
    return text.startswith(SCHEME)


def is_name(text: object) -> bool:
    """Whether `text` can be a project, kind, name or id (a safe path segment)."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def name_fault(**parts: object) -> Optional[str]:
    """What is wrong with the first part that is not a name, if any."""
    for part, value in parts.items():
        if not is_name(value):
            return f"{part} {value!r} is not a name ({NAME_RULE})"
    return None


def check_names(field: str, **parts: str) -> None:
    """A SpecError naming `field` and the first part that is not a name."""
    fault = name_fault(**parts)
    if fault:
        raise SpecError(f"{field}: {fault}")

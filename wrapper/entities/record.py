"""An entity version's metadata document, as every store keeps it (DESIGN §5).

Identity: (project, entity_type, name) names an entity; each version has a fresh UUID4 hex
`id`; "by name" means the version with the highest `created_ns` (ties broken by id). The
`kind` belongs to the version (a key that names another kind does not find it).
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any, Optional, Union

from wrapper.entities.keys import EntityKey
from wrapper.errors import SpecError

FORMAT = 1
"""The version of this document's layout, stored with it."""

Labels = Union[list[str], dict[str, str]]
"""DigitalHub's labels (a list of words) or fn-wrapper's (`key=value` pairs)."""


class Fields(dict[str, Any]):
    """A spec: a dict whose keys also read and write as attributes (`entity.spec.path`, as
    DigitalHub's spec objects have them)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the spec has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class EntityRecord:
    """One version of an entity: its key parts, when and by which run it was made, its
    labels and description, its spec (`path`: where the content is; kind-specific fields), its
    metrics (a model's), and the size and SHA-256 of the content the store holds for it (None
    for a remote path)."""

    __slots__ = (
        "created_ns",
        "description",
        "entity_type",
        "id",
        "kind",
        "labels",
        "metrics",
        "name",
        "project",
        "run",
        "sha256",
        "size",
        "spec",
    )

    def __init__(
        self,
        project: str,
        entity_type: str,
        kind: str,
        name: str,
        *,
        id: Optional[str] = None,
        created_ns: Optional[int] = None,
        labels: Optional[Labels] = None,
        description: Optional[str] = None,
        spec: Optional[dict[str, Any]] = None,
        metrics: Optional[dict[str, Any]] = None,
        run: Optional[str] = None,
        size: Optional[int] = None,
        sha256: Optional[str] = None,
    ) -> None:
        self.project, self.entity_type, self.kind, self.name = project, entity_type, kind, name
        self.id = id or new_id()
        self.created_ns = time.time_ns() if created_ns is None else created_ns
        self.labels = checked_labels(labels)
        self.description = description
        self.spec = Fields(spec or {})
        self.metrics = dict(metrics or {})
        self.run = run
        self.size = size
        self.sha256 = sha256

    @property
    def key(self) -> EntityKey:
        return EntityKey(self.project, self.entity_type, self.kind, self.name, self.id)

    @property
    def created(self) -> str:
        """Creation time, ISO 8601 in UTC."""
        seconds, nanoseconds = divmod(self.created_ns, 1_000_000_000)
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        return moment.replace(microsecond=nanoseconds // 1000).isoformat()

    @property
    def path(self) -> str:
        return str(self.spec.get("path", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "key": str(self.key),
            "metadata": {
                "project": self.project,
                "entity_type": self.entity_type,
                "kind": self.kind,
                "name": self.name,
                "id": self.id,
                "created": self.created,
                "created_ns": self.created_ns,
                "labels": self.labels,
                "description": self.description,
                "run": self.run,
            },
            "spec": self.spec,
            "status": {"metrics": self.metrics},
            "content": {"size": self.size, "sha256": self.sha256},
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> EntityRecord:
        meta, content = document["metadata"], document.get("content") or {}
        status = document.get("status") or {}
        return cls(
            meta["project"],
            meta["entity_type"],
            meta["kind"],
            meta["name"],
            id=meta["id"],
            created_ns=int(meta["created_ns"]),
            labels=meta.get("labels") or {},
            description=meta.get("description"),
            spec=document.get("spec") or {},
            metrics=status.get("metrics") or {},
            run=meta.get("run"),
            size=content.get("size"),
            sha256=content.get("sha256"),
        )

    def newer_than(self, other: EntityRecord) -> bool:
        """The latest-version rule: higher creation time, then higher id."""
        return (self.created_ns, self.id) > (other.created_ns, other.id)

    def __repr__(self) -> str:
        return f"EntityRecord({str(self.key)!r})"


class RecordView:
    """What the object of one version shows of its record, with DigitalHub's names."""

    record: EntityRecord

    @property
    def key(self) -> str:
        """store://… with this version's id."""
        return str(self.record.key)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def spec(self) -> Fields:
        """The spec's fields, as keys or attributes (`spec.path`)."""
        return self.record.spec


def checked_labels(labels: Optional[Labels]) -> Labels:
    """A copy of `labels`: a list of strings (DigitalHub's) or a mapping of strings; a
    SpecError otherwise."""
    if labels is None:
        return {}
    if isinstance(labels, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        return dict(labels)
    if isinstance(labels, (list, tuple)) and all(isinstance(label, str) for label in labels):
        return list(labels)
    raise SpecError(f"labels: expected a list of strings or a mapping of strings, got {labels!r}")


def new_id() -> str:
    """A fresh entity or run id: a UUID4 in hex (made here: the uuid module costs more to
    import than the run takes to start)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()

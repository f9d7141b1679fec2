"""`fn-wrapper store put|get|ls`: register files as entities, read them back, list them, so a
user can prepare a job's inputs (and look at its outputs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from wrapper.cli.options import STORE_OPTIONS, Option, Settings
from wrapper.errors import SpecError

if TYPE_CHECKING:
    from wrapper.entities.store import Store

ACTIONS = ("put", "get", "ls")

OPTIONS = (
    Option("--action", "put FILE | get KEY | ls", choices=ACTIONS, positional=True),
    Option(
        "--target",
        "put: the file to register; get: a store:// key or an entity name",
        positional=True,
        metavar="FILE|KEY",
    ),
    *STORE_OPTIONS,
    Option(
        "--type",
        "entity type (put: default dataitem for .csv/.parquet, else artifact; ls: a filter)",
        choices=("dataitem", "artifact", "model"),
    ),
    Option("--kind", "put: the entity's kind (default: table, artifact or model by type)"),
    Option("--name", "put: the entity's name (default: the file's stem); ls: a filter"),
    Option("--label", "put: a label key=value (repeat the flag for more)", repeat=True),
    Option("--output", "get: download the content to this file or folder", metavar="PATH"),
)

TABLES = (".csv", ".parquet", ".pq", ".tsv")
KINDS = {"dataitem": "table", "artifact": "artifact", "model": "model"}


def run(settings: Settings) -> int:
    from wrapper.entities.store import open_store

    if settings.action is None:
        raise SpecError("store: say what to do: put FILE, get KEY or ls")
    store = open_store(settings.store)
    try:
        if settings.action == "put":
            return _put(settings, store)
        if settings.action == "get":
            return _get(settings, store)
        for record in store.versions(settings.project, settings.type, settings.name):
            size = "-" if record.size is None else str(record.size)
            print(f"{record.key}\t{size}\t{record.created}")
        return 0
    finally:
        store.close()


def _put(settings: Settings, store: Store) -> int:
    from wrapper.entities.project import Project

    if not settings.target:
        raise SpecError("store put: give the FILE to register")
    path = Path(settings.target)
    entity_type = settings.type or ("dataitem" if path.suffix.lower() in TABLES else "artifact")
    labels = dict(_label(text) for text in settings.label or [])
    project = Project(settings.project, store)
    log = getattr(project, f"log_{entity_type}")
    entity = log(
        settings.name or path.stem,
        kind=settings.kind or KINDS[entity_type],
        source=path,
        labels=labels,
    )
    print(entity.key)
    return 0


def _get(settings: Settings, store: Store) -> int:
    from wrapper.entities.keys import EntityKey, is_key
    from wrapper.entities.objects import entity_object

    if not settings.target:
        raise SpecError("store get: give a store:// key (or --type and an entity name)")
    if is_key(settings.target):
        entity_type = EntityKey.parse(settings.target, "store get").entity_type
    elif settings.type:
        entity_type = settings.type
    else:
        raise SpecError(f"store get: {settings.target!r} is a name: say its --type")
    record = store.find(settings.target, settings.project, entity_type, "store get")
    if settings.output:
        print(entity_object(record, store).download(settings.output, overwrite=True))
    else:
        print(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    return 0


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SpecError(f"--label {text!r}: expected key=value")
    return key, value

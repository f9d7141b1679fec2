"""`fn-wrapper store put|get|ls|runs|rm|prune`: register files and remote paths as entities,
read them back, list them and the runs, remove versions and runs, prune old ones, so a user
can prepare a job's inputs, look at its outputs and keep a store small (DESIGN §5, §10).

Every flag that names what the command acts on is an operand, with no environment twin; only
`--store`, `--project` and the logging flags have one.
"""

from __future__ import annotations

import json
import sys
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Optional

from wrapper.errors import SpecError
from wrapper.settings import STORE_OPTIONS, Option, Settings, count, duration

if TYPE_CHECKING:
    from wrapper.entities.prune import Pruning
    from wrapper.entities.record import EntityRecord
    from wrapper.entities.store import Store

ACTIONS = ("put", "get", "ls", "runs", "rm", "prune")
STATES = ("RUNNING", "COMPLETED", "ERROR", "STOPPED")

OPTIONS = (
    Option(
        "--action",
        "put FILE|URL | get KEY|RUN | ls | runs | rm KEY|RUN | prune",
        choices=ACTIONS,
        positional=True,
        twin=False,
    ),
    Option(
        "--target",
        "put: a file or folder to upload, or a URL (http(s)://, s3://) to register in place;"
        " get, rm: a store:// key, an entity name with --type, or a run id",
        positional=True,
        metavar="OPERAND",
        twin=False,
    ),
    *STORE_OPTIONS,
    Option(
        "--type",
        "entity type (put: default dataitem for .csv/.tsv/.parquet, else artifact;"
        " get, rm: the type of a NAME; ls, prune: a filter)",
        choices=("dataitem", "artifact", "model"),
        twin=False,
    ),
    Option(
        "--kind",
        "put: the entity's kind (default: table, artifact or model by type)",
        twin=False,
    ),
    Option(
        "--name",
        "put: the entity's name (default: the file's stem); ls, prune: a filter",
        twin=False,
    ),
    Option("--label", "put: a label key=value (repeat the flag for more)", repeat=True, twin=False),
    Option(
        "--output",
        "get: download the content to this file or folder",
        metavar="PATH",
        twin=False,
    ),
    Option("--function", "runs, prune --runs: only the runs of this function", twin=False),
    Option(
        "--state",
        "runs, prune --runs: only the runs in this state",
        str.upper,
        choices=STATES,
        twin=False,
    ),
    Option(
        "--older-than",
        "prune: what is older than this (30m, 12h, 7d; units s, m, h, d)",
        duration,
        metavar="AGE",
        twin=False,
    ),
    Option(
        "--keep",
        "prune: keep the newest N versions of each entity (--runs: runs of each function)",
        count,
        metavar="N",
        twin=False,
    ),
    Option(
        "--runs",
        "prune: prune run documents instead of entity versions",
        switch=True,
        twin=False,
    ),
    Option("--dry-run", "prune: list what would go, remove nothing", switch=True, twin=False),
    Option(
        "--force",
        "rm, prune: remove versions a run's lineage needs, and RUNNING runs",
        switch=True,
        twin=False,
    ),
)

TAKES = {
    "put": "target type kind name label",
    "get": "target type output",
    "ls": "type name",
    "runs": "function state",
    "rm": "target type force",
    "prune": "older_than keep type name runs function state dry_run force",
}
"""The operands (option dests) each action takes."""

TABLES = (".csv", ".parquet", ".pq", ".tsv")
KINDS = {"dataitem": "table", "artifact": "artifact", "model": "model"}
REMOTE = ("http", "https", "s3")
"""The schemes of paths `put` registers in place (those a job reads)."""


def run(settings: Settings) -> int:
    from wrapper.entities.store import open_store

    if settings.action is None:
        raise SpecError("store: say what to do: put, get, ls, runs, rm or prune")
    _check_operands(settings)
    action = {"put": _put, "get": _get, "ls": _ls, "runs": _runs, "rm": _rm, "prune": _prune}
    store = open_store(settings.store)
    try:
        return action[settings.action](settings, store)
    finally:
        store.close()


def _check_operands(settings: Settings) -> None:
    """Refuse an operand the action does not take (a flag that would silently do nothing)."""
    takes = TAKES[settings.action].split()
    for option in OPTIONS:
        dest = option.dest
        if option.twin or dest == "action" or dest in takes or settings.values[dest] is None:
            continue
        if dest == "target":
            raise SpecError(f"store {settings.action} takes no operand, got {settings.target!r}")
        users = [action for action, names in TAKES.items() if dest in names.split()]
        raise SpecError(
            f"store {settings.action}: {option.flag} does not apply (it is for {', '.join(users)})"
        )
    if settings.action in ("put", "get", "rm") and not settings.target:
        what = "a FILE or URL" if settings.action == "put" else "a store:// key or a run id"
        raise SpecError(f"store {settings.action}: give {what}")
    if settings.action == "prune":
        if settings.older_than is None and settings.keep is None:
            raise SpecError("store prune: say what goes: --older-than AGE, --keep N, or both")
        if settings.runs and (settings.type or settings.name):
            flag = "--type" if settings.type else "--name"
            raise SpecError(f"store prune --runs: {flag} filters entity versions, not runs")
        if not settings.runs and (settings.function or settings.state):
            flag = "--function" if settings.function else "--state"
            raise SpecError(f"store prune: {flag} filters runs: add --runs to prune runs")


def _put(settings: Settings, store: Store) -> int:
    from urllib.parse import urlsplit

    from wrapper.entities.keys import check_names, is_name
    from wrapper.entities.project import Project
    from wrapper.entities.remote import local_path, shown

    local = local_path(settings.target)
    shape = PurePosixPath(urlsplit(settings.target).path) if local is None else local
    entity_type = settings.type or ("dataitem" if shape.suffix.lower() in TABLES else "artifact")
    name = settings.name or shape.stem
    if settings.name:
        check_names("store put --name", name=name)
    elif not is_name(name):
        raise SpecError(f"store put: {settings.target!r} gives no entity name: give --name")
    kind = settings.kind or KINDS[entity_type]
    check_names("store put --kind", kind=kind)
    labels = dict(_label(text) for text in settings.label or [])
    project = Project(settings.project, store)
    if local is not None:
        log = getattr(project, f"log_{entity_type}")
        entity = log(name, kind=kind, source=local, labels=labels)
    else:
        scheme = urlsplit(settings.target).scheme
        if scheme.lower() not in REMOTE:
            raise SpecError(
                f"store put: {shown(settings.target)!r}: a {scheme}:// path cannot be"
                " registered: a job reads http://, https:// and s3:// paths (or give a local"
                " file to upload)"
            )
        new = getattr(project, f"new_{entity_type}")
        entity = new(name, kind, path=settings.target, labels=labels)
    print(entity.key)
    return 0


def _get(settings: Settings, store: Store) -> int:
    from wrapper.entities.objects import entity_object

    record = _entity(settings, store)
    if record is None:
        if settings.output:
            raise SpecError(f"store get: {settings.target!r} is a run: --output is for entities")
        print(json.dumps(_run_document(settings, store), indent=2, sort_keys=True))
        return 0
    if settings.output:
        print(entity_object(record, store).download(settings.output, overwrite=True))
    else:
        print(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    return 0


def _ls(settings: Settings, store: Store) -> int:
    for record in store.versions(settings.project, settings.type, settings.name):
        size = "-" if record.size is None else str(record.size)
        print(f"{record.key}\t{size}\t{record.created}")
    return 0


def _runs(settings: Settings, store: Store) -> int:
    for document in store.runs(settings.project):
        if settings.function not in (None, document.get("function")):
            continue
        if settings.state not in (None, document.get("state")):
            continue
        fields = ("id", "function", "action", "state", "started")
        print("\t".join(_shown(document.get(field)) for field in fields))
    return 0


def _rm(settings: Settings, store: Store) -> int:
    from wrapper.entities.prune import needed_by

    record = _entity(settings, store)
    if record is None:
        document = _run_document(settings, store)
        if document.get("state") == "RUNNING" and not settings.force:
            raise SpecError(
                f"store rm: run {settings.target!r} is RUNNING: a job may still write it"
                " (if its process is gone, give --force)"
            )
        store.remove_run(settings.project, settings.target)
        print(settings.target)
        return 0
    runs = [] if settings.force else needed_by(store, record)
    if runs:
        raise SpecError(
            f"store rm: {str(record.key)!r} is in the lineage of run(s) {', '.join(runs)}:"
            " remove those runs first, or give --force"
        )
    store.remove(record)
    print(record.key)
    return 0


def _prune(settings: Settings, store: Store) -> int:
    from wrapper.entities import prune

    rules = prune.Rules(settings.older_than, settings.keep)
    force = bool(settings.force)
    if settings.runs:
        pruning = prune.plan_runs(
            store, settings.project, rules, settings.function, settings.state, force
        )
    else:
        pruning = prune.plan_versions(
            store, settings.project, rules, settings.type, settings.name, force
        )
    if not settings.dry_run:
        prune.apply(store, pruning)
    _report(pruning, bool(settings.dry_run))
    return 0


def _report(pruning: Pruning, dry_run: bool) -> None:
    """One tab-separated line per version or run removed or kept, then a summary on stderr."""
    removed = "would remove" if dry_run else "removed"
    for record in pruning.versions:
        print(f"{removed}\t{record.key}\t{record.created}")
    for record, runs in pruning.needed:
        print(f"kept\t{record.key}\tin the lineage of run(s) {', '.join(runs)}")
    for document in pruning.runs:
        fields = ("id", "function", "state", "started")
        print("\t".join([removed, *(_shown(document.get(field)) for field in fields)]))
    for document in pruning.running:
        print(f"kept\t{_shown(document.get('id'))}\tRUNNING (--force removes it)")
    if pruning.runs or pruning.running:
        what = f"{len(pruning.runs)} run(s)"
        kept = f"kept {len(pruning.running)} RUNNING"
    else:
        what = f"{len(pruning.versions)} version(s)"
        kept = f"kept {len(pruning.needed)} for the lineage of runs"
    print(f"store prune: {removed} {what}, {kept}", file=sys.stderr)


def _entity(settings: Settings, store: Store) -> Optional[EntityRecord]:
    """The version the operand names (a key, or a name with --type); None for a run id."""
    from wrapper.entities.keys import EntityKey, is_key

    field = f"store {settings.action}"
    if is_key(settings.target):
        entity_type = EntityKey.parse(settings.target, field).entity_type
    elif settings.type:
        entity_type = settings.type
    else:
        return None
    return store.find(settings.target, settings.project, entity_type, field)


def _run_document(settings: Settings, store: Store) -> dict[str, Any]:
    """The run the operand names; a missing one says how to name an entity instead."""
    from wrapper.entities.store import EntityNotFound

    try:
        return store.get_run(settings.project, settings.target)
    except EntityNotFound as exc:
        raise EntityNotFound(
            f"store {settings.action}: {exc.message}; if {settings.target!r} is a name: say its"
            " --type"
        ) from None


def _shown(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SpecError(f"--label {text!r}: expected key=value")
    return key, value

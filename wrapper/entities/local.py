"""The embedded local store: content files and an SQLite index under one folder (DESIGN §5).

Layout under the root: `index.sqlite3` (one row per version), `content/<project>/<entity_type>/
<name>/<id>/<filename>`, `runs/<project>/<run_id>.json` and `tmp/` for partial writes. Content is
written to `tmp/`, synced and renamed into place before its row is committed, so a writer killed
at any moment leaves nothing visible (a removal deletes the row first, then the content). Every
path is built from checked names, stays under the root and never follows a symbolic link.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional

from wrapper.entities.keys import ENTITY_TYPES, is_name, name_fault
from wrapper.entities.record import EntityRecord
from wrapper.entities.store import (
    CHUNK,
    Store,
    StoreError,
    content_filename,
    newest_runs,
)
from wrapper.entities.transfer import Progress
from wrapper.errors import SpecError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS versions (project TEXT NOT NULL, entity_type TEXT NOT NULL,"
    " kind TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, created_ns INTEGER NOT NULL,"
    " document TEXT NOT NULL, PRIMARY KEY (project, entity_type, name, id))",
    "CREATE INDEX IF NOT EXISTS versions_by_name"
    " ON versions (project, entity_type, name, created_ns)",
)
_BY_KEY = "WHERE project = ? AND entity_type = ? AND name = ? AND id = ?"
BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's transaction before giving up."""
STALE_TEMP = 3600.0
"""Seconds after which a file left in tmp/ is a dead writer's, removed when a store opens."""


class LocalStore(Store):
    """Entity versions and run documents in a folder on this machine, safe with concurrent
    writers (threads and processes)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.uri = self.root.as_uri()
        self._index = self.root / "index.sqlite3"
        self._lock = threading.Lock()
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0
        try:
            for folder in ("content", "runs", "tmp"):
                (self.root / folder).mkdir(parents=True, exist_ok=True)
            self._real_root = self.root.resolve()
        except OSError as exc:
            raise StoreError(
                f"--store {self.uri}: cannot create {exc.filename}: {exc.strerror}"
            ) from None
        self._tmp = self._confined("tmp")
        self._remove_stale_temps()
        self._db()

    def put(self, record: EntityRecord, content: Optional[BinaryIO], filename: str) -> EntityRecord:
        _check_record(record)
        if content is not None:
            target = self._content_path(record, content_filename(filename, record.name))
            record.size, record.sha256 = self._write_content(content, target)
            record.spec["path"] = str(target)
        row = (record.project, record.entity_type, record.kind, record.name, record.id)
        document = json.dumps(record.to_dict(), separators=(",", ":"))
        try:
            self._execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*row, record.created_ns, document),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"store {self.uri}: {str(record.key)!r} is already kept") from None
        return record

    def versions(
        self,
        project: Optional[str] = None,
        entity_type: Optional[str] = None,
        name: Optional[str] = None,
    ) -> list[EntityRecord]:
        given = {"project": project, "entity_type": entity_type, "name": name}
        where = [f"{column} = ?" for column, value in given.items() if value is not None]
        sql = "SELECT document FROM versions" + (" WHERE " + " AND ".join(where) if where else "")
        values = tuple(value for value in given.values() if value is not None)
        rows = self._execute(sql + " ORDER BY created_ns DESC, id DESC", values)
        return [EntityRecord.from_dict(json.loads(document)) for (document,) in rows]

    def version(self, project: str, entity_type: str, name: str, id: str) -> EntityRecord:
        rows = self._execute(
            f"SELECT document FROM versions {_BY_KEY}", (project, entity_type, name, id)
        )
        if not rows:
            raise self._no_version(project, entity_type, name, id)
        return EntityRecord.from_dict(json.loads(rows[0][0]))

    def remove(self, record: EntityRecord) -> None:
        where = (record.project, record.entity_type, record.name, record.id)
        if name_fault(project=record.project, name=record.name, id=record.id) or (
            record.entity_type not in ENTITY_TYPES
        ):
            raise self._no_version(*where)  # no version has such a name
        folder = self._confined("content", *where)  # a planted link is refused before any change
        _, changed = self._statement(f"DELETE FROM versions {_BY_KEY}", where)
        if not changed:
            raise self._no_version(*where)
        try:
            shutil.rmtree(folder)  # never follows a link inside (and refuses one as `folder`)
        except FileNotFoundError:
            pass  # nothing held: a remote path
        except OSError as exc:
            raise StoreError(
                f"store {self.uri}: {str(record.key)!r} is removed but not its content"
                f" {folder}: {exc.strerror}"
            ) from None

    def update(self, record: EntityRecord) -> None:
        where = (record.project, record.entity_type, record.name, record.id)
        self._check_update(self.version(*where), record)
        document = json.dumps(record.to_dict(), separators=(",", ":"))
        _, changed = self._statement(
            f"UPDATE versions SET document = ? {_BY_KEY}", (document, *where)
        )
        if not changed:
            raise self._no_version(*where)  # removed meanwhile

    def open(self, record: EntityRecord) -> BinaryIO:
        path = self.local_file(record)
        if path is None:
            raise StoreError(
                f"store {self.uri}: {str(record.key)!r} is not held here: its content is at"
                f" {record.path!r}"
            )
        try:
            return path.open("rb")
        except OSError as exc:
            raise StoreError(f"store {self.uri}: cannot read {path}: {exc.strerror}") from None

    def local_file(self, record: EntityRecord) -> Optional[Path]:
        if record.sha256 is None:
            return None
        _check_record(record)
        path = self._content_path(record, content_filename(Path(record.path).name, record.name))
        return path if path.is_file() else None  # else held by another store

    def put_run(self, document: dict[str, Any]) -> None:
        project, run_id = document.get("project"), document.get("id")
        fault = name_fault(project=project, id=run_id)
        if fault:
            raise StoreError(f"store {self.uri}: a run document's {fault}")
        path = self._confined("runs", str(project), f"{run_id}.json")
        text = json.dumps(document, indent=1).encode()
        self._replace_atomically(path, self._tmp, lambda out: out.write(text))

    def get_run(self, project: str, run_id: str) -> dict[str, Any]:
        missing = self._no_run(project, run_id)
        if name_fault(project=project, id=run_id):
            raise missing  # no run has such a name
        path = self._confined("runs", project, f"{run_id}.json")
        try:
            with path.open(encoding="utf-8") as document:
                found: dict[str, Any] = json.load(document)
        except FileNotFoundError:
            raise missing from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"store {self.uri}: cannot read {path}: {exc}") from None
        return found

    def remove_run(self, project: str, run_id: str) -> None:
        if name_fault(project=project, id=run_id):
            raise self._no_run(project, run_id)  # no run has such a name
        path = self._confined("runs", project, f"{run_id}.json")
        try:
            path.unlink()
        except FileNotFoundError:
            raise self._no_run(project, run_id) from None
        except OSError as exc:
            raise StoreError(f"store {self.uri}: cannot remove {path}: {exc.strerror}") from None

    def runs(self, project: Optional[str] = None) -> list[dict[str, Any]]:
        if project is not None and not is_name(project):
            return []  # no run is kept under such a name
        names = [project] if project else self._entries(self._confined("runs"), folders=True)
        found = []
        for name in names:
            folder = self._confined("runs", name)
            for entry in self._entries(folder, folders=False):
                if entry.endswith(".json") and is_name(entry[: -len(".json")]):
                    found.append(self._read_run(folder / entry))
        return newest_runs(document for document in found if document is not None)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def _entries(self, folder: Path, folders: bool) -> list[str]:
        """The names of the folders (or files) in `folder` that are names, never symbolic
        links, in order; none when `folder` is absent."""
        try:
            with os.scandir(folder) as entries:
                return sorted(
                    entry.name
                    for entry in entries
                    if is_name(entry.name)
                    and (entry.is_dir if folders else entry.is_file)(follow_symlinks=False)
                )
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"store {self.uri}: cannot list {folder}: {exc.strerror}") from None

    def _read_run(self, path: Path) -> Optional[dict[str, Any]]:
        """The run document at `path`; None when it is gone or not a JSON object."""
        try:
            with path.open(encoding="utf-8") as document:
                found = json.load(document)
        except (FileNotFoundError, IsADirectoryError, ValueError):
            return None
        except OSError as exc:
            raise StoreError(f"store {self.uri}: cannot read {path}: {exc.strerror}") from None
        return found if isinstance(found, dict) else None

    def _content_path(self, record: EntityRecord, filename: str) -> Path:
        parts = (record.project, record.entity_type, record.name, record.id, filename)
        return self._confined("content", *parts)

    def _confined(self, *parts: str) -> Path:
        """root/parts, refused when a folder on the way is a symbolic link or it leaves root."""
        path = self.root
        for part in parts:
            path = path / part
            if path.is_symlink():
                raise StoreError(f"store {self.uri}: refusing the symbolic link {path}")
        if not path.resolve().is_relative_to(self._real_root):
            raise StoreError(f"store {self.uri}: {path} is outside the store")
        return path

    def _write_content(self, content: BinaryIO, target: Path) -> tuple[int, str]:
        """Stream `content` into `target` through tmp/: (size, sha256)."""
        if target.exists():
            raise StoreError(f"store {self.uri}: {target} already exists")
        digest, size = hashlib.sha256(), 0
        progress = Progress(f"store {target.name}", None)

        def copy(out: BinaryIO) -> None:
            nonlocal size
            while chunk := content.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                progress.advance(len(chunk))

        self._replace_atomically(target, self._tmp, copy)
        progress.finish()
        return size, digest.hexdigest()

    def _replace_atomically(
        self, target: Path, temp_folder: Path, write: Callable[[BinaryIO], object]
    ) -> None:
        """Write a temp file in `temp_folder`, sync it and rename it to `target`."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=temp_folder, prefix=".", suffix=".part")
            try:
                with os.fdopen(handle, "wb") as out:
                    write(out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
            except BaseException:
                os.unlink(temp)
                raise
            _sync_folder(target.parent)
        except OSError as exc:
            raise StoreError(f"store {self.uri}: cannot write {target}: {exc.strerror}") from None

    def _execute(self, sql: str, values: tuple[Any, ...]) -> list[Any]:
        """One statement in its own transaction (autocommit): the rows it answers."""
        return self._statement(sql, values)[0]

    def _statement(self, sql: str, values: tuple[Any, ...]) -> tuple[list[Any], int]:
        """One statement in its own transaction (autocommit): its rows and rows changed."""
        try:
            with self._lock:
                cursor = self._db().execute(sql, values)
                return cursor.fetchall(), cursor.rowcount
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.uri}: the index {self._index} failed: {exc}") from None

    def _db(self) -> sqlite3.Connection:
        """This process's connection (a new one after a fork), the schema made on first use."""
        if self._connection is None or self._pid != os.getpid():
            try:
                connection = sqlite3.connect(
                    self._index,
                    timeout=BUSY_TIMEOUT,
                    isolation_level=None,
                    check_same_thread=False,
                )
                _retry_while_locked(lambda: _prepare(connection), time.monotonic() + BUSY_TIMEOUT)
            except sqlite3.Error as exc:
                raise StoreError(f"store {self.uri}: cannot open {self._index}: {exc}") from None
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _remove_stale_temps(self) -> None:
        """Remove what writers killed over an hour ago left in tmp/ (invisible anyway)."""
        cutoff = time.time() - STALE_TEMP
        for entry in os.scandir(self._tmp):
            with contextlib.suppress(OSError):  # another store may remove it first
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)


def _prepare(connection: sqlite3.Connection) -> None:
    """Switch the index to write-ahead logging (once per file) and make its schema.

    The schema is made in an immediate transaction: a deferred one that read the schema could
    not upgrade to writing once another process had changed it, and would fail at once.
    """
    if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _retry_while_locked(step: Callable[[], None], deadline: float) -> None:
    """Run `step` until it does not meet a lock, or until `deadline` (monotonic seconds).

    SQLite answers "database is locked" at once, without waiting out its busy timeout, when
    several processes open a new index together (the switch to write-ahead logging and its
    recovery take locks its busy handler does not wait for).
    """
    pause = 0.001
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            contended = "locked" in str(exc) or "busy" in str(exc)
            if not contended or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _sync_folder(folder: Path) -> None:
    """Make a rename into `folder` survive a power loss (POSIX; Windows cannot open folders)."""
    if os.name == "posix":
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _check_record(record: EntityRecord) -> None:
    """A record's key parts must follow the key grammar (so they are safe path segments)."""
    if record.entity_type not in ENTITY_TYPES:
        types = ", ".join(ENTITY_TYPES)
        raise SpecError(f"entity type {record.entity_type!r} is not one of {types}")
    fault = name_fault(project=record.project, kind=record.kind, name=record.name, id=record.id)
    if fault:
        raise SpecError(fault)

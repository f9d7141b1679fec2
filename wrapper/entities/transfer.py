"""Content moved in pieces, with progress for large transfers; files that appear whole or not
at all (a temporary name in the same folder, fsync, then rename)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO, Optional

from wrapper.entities.store import CHUNK, StoreError

log = logging.getLogger("wrapper.entities")

PROGRESS_FROM = 8 * 1024 * 1024
"""Transfers report progress once they pass this many bytes."""

LOG_EVERY = 5.0
"""Seconds between progress log lines when standard error is not a terminal."""


class Progress:
    """A bar redrawn on a terminal, else a log line every few seconds, and a last one; only
    for transfers that pass PROGRESS_FROM bytes."""

    def __init__(self, label: str, total: Optional[int]) -> None:
        self.label, self.total, self.done = label, total, 0
        self.began = self.shown = time.monotonic()
        self.terminal = sys.stderr.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.done > PROGRESS_FROM and now - self.shown >= (0.2 if self.terminal else LOG_EVERY):
            self.shown = now
            self._show(final=False)

    def finish(self) -> None:
        if self.done > PROGRESS_FROM:
            self._show(final=True)

    def _show(self, final: bool) -> None:
        mib = self.done / 2**20
        rate = mib / max(time.monotonic() - self.began, 1e-6)
        of = f" of {self.total / 2**20:.1f}" if self.total else ""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.label}: {mib:.1f}{of} MiB{share}, {rate:.1f} MiB/s"
        if self.terminal:
            sys.stderr.write(f"\r{text}" + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            log.info("%s%s", text, " (done)" if final else "")


def copy_stream(source: BinaryIO, target: BinaryIO, label: str, total: Optional[int] = None) -> int:
    """Copy `source` to `target` in CHUNK pieces; the number of bytes copied."""
    progress = Progress(label, total)
    while True:
        piece = source.read(CHUNK)
        if not piece:
            break
        target.write(piece)
        progress.advance(len(piece))
    progress.finish()
    return progress.done


def write_file(path: Path, source: BinaryIO, label: str, total: Optional[int] = None) -> int:
    """Write `source` to `path` whole or not at all; the number of bytes written."""
    partial = path.with_name(f"{_partial_prefix(path)}{os.getpid()}.{os.urandom(4).hex()}{_PART}")
    try:
        with open(partial, "xb") as target:
            copied = copy_stream(source, target, label, total)
            target.flush()
            os.fsync(target.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if partial.exists():
            partial.unlink()
    return copied


_PART = ".part"


def _partial_prefix(path: Path) -> str:
    """How the names of `path`'s partial files begin (hidden, beside it)."""
    return f".{path.name}."


def remove_partials(path: Path) -> None:
    """Remove the partial files write_file left for `path` in a process killed mid-write."""
    prefix = _partial_prefix(path)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:  # no folder yet: nothing left there
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(_PART):
            with contextlib.suppress(OSError):  # another process removed it first
                os.unlink(entry.path)

"""`fn-wrapper serve --reload`: the local source watched, new code checked before it serves.

A thread of the master watches the source with watchfiles and, on a change, signals the master
(SIGUSR2, which gunicorn would otherwise take for a re-exec). The master checks the new code in
a forked child (materialise, import, init, as a worker would), then starts new workers with
it and retires the old ones as the new ones become ready (wrapper/serve/server.py's arbiter):
the port stays open and in-flight requests finish. Code that fails to import or init is
reported and the old workers keep serving until a later save fixes it.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from wrapper.errors import SpecError

log = logging.getLogger("wrapper.serve")

RELOAD_SIGNAL = signal.SIGUSR2
CHECK_TIMEOUT = 120.0
"""Seconds the new code may take to load and init in the check before it counts as failed."""


def watcher_module() -> None:
    """Refuse --reload where watchfiles is not installed, before anything starts."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise SpecError(
            "--reload: needs the watchfiles package: pip install 'fn-wrapper[dev]'"
        ) from None


class Watcher:
    """A daemon thread signalling this process (the master) when `path` changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fn-wrapper-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        import watchfiles

        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # its line, then ours: ours
        master = os.getpid()
        for changes in watchfiles.watch(self.path, stop_event=self._stop, raise_interrupt=False):
            names = sorted({Path(name).name for _, name in changes})
            log.info("reload: %s changed", ", ".join(names[:5]) + (" …" if len(names) > 5 else ""))
            os.kill(master, RELOAD_SIGNAL)


def check_in_child(prepare: Callable[[], None], timeout: float = CHECK_TIMEOUT) -> Optional[str]:
    """Run `prepare` (load the code and run init) in a forked child: None when it succeeded,
    else its error message (one line; the child's own log has the details)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into the master's code
        os.close(reader)
        code, message = 0, b""
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            prepare()
        except BaseException as exc:
            text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            code, message = 1, str(text).encode(errors="replace")[:65536]
        finally:
            os.write(writer, message)
            os._exit(code)
    os.close(writer)
    message, ends = b"", time.monotonic() + timeout
    try:
        while True:
            left = ends - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"loading the new code took longer than {timeout:g} s"
            piece = os.read(reader, 65536)
            if not piece:
                break
            message += piece
    finally:
        os.close(reader)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return message.decode(errors="replace") or f"the check exited with status {status}"

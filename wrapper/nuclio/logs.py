"""Log records as the processor's `l` lines, sent on the event socket.

`{"datetime": "YYYY-MM-DD HH:MM:SS,mmm", "level", "message", "with": {...}}`; the processor
files them under the event being handled. Unlike Nuclio's wrapper, the level is honoured, the
request id and any traceback travel in `with`, and a huge record is cut (with a marker) so it
never reaches the processor as a multi-megabyte line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Callable

from wrapper.logs import REQUEST_ID

MAX_MESSAGE = 64 * 1024
"""Characters of a message (and of a traceback) kept in one record."""


class ProcessorLogHandler(logging.Handler):
    """Sends each record to the processor as one `l` line through `send`."""

    def __init__(self, send: Callable[[bytes], None], secrets: list[str]) -> None:
        super().__init__()
        self._send = send
        self._secrets = sorted(secrets, key=len, reverse=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.line(record)
        except Exception:
            self.handleError(record)
            return
        try:
            self._send(b"l" + line.encode() + b"\n")
        except OSError:  # the processor is gone: the container log still gets the record
            sys.stderr.write(line + "\n")

    def line(self, record: logging.LogRecord) -> str:
        """The JSON text of one record, secrets masked."""
        extra: dict[str, Any] = dict(getattr(record, "with", None) or {})
        request_id = REQUEST_ID.get()
        if request_id is not None:
            extra.setdefault("request_id", request_id)
        if record.exc_info:
            extra["traceback"] = _cut(logging.Formatter().formatException(record.exc_info))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        text = json.dumps(
            {
                "datetime": f"{stamp},{int(record.msecs):03d}",
                "level": record.levelname.lower(),
                "message": _cut(record.getMessage()),
                "with": extra,
            },
            default=_loggable,
            ensure_ascii=False,
        )
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}... [{len(text) - MAX_MESSAGE} more characters cut]"


def _loggable(value: Any) -> str:
    """A value json cannot encode: its `__log__()` (Nuclio's hook), else its repr, cut."""
    hook = getattr(value, "__log__", None)
    return _cut(str(hook() if callable(hook) else repr(value)))

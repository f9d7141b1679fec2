"""Log records as the processor's `l` lines, sent on the event socket.

`{"datetime": "YYYY-MM-DD HH:MM:SS,mmm", "level", "message", "with": {...}}`; the processor
files them under the event being handled. Unlike Nuclio's wrapper, the level is honoured, the
request id and any traceback travel in `with`, secrets are masked in every field before the
line is encoded (wrapper.secrets), and a huge record is cut (with a marker) so it never
reaches the processor as a multi-megabyte line: each string (the message, the traceback, each
`with` value) keeps MAX_MESSAGE characters, and a line still over MAX_LINE bytes keeps only
its message, request id and traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Callable, Optional

from wrapper.logs import REQUEST_ID
from wrapper.secrets import Redaction

MAX_MESSAGE = 64 * 1024
"""Characters of a message, a traceback or any one `with` string kept in one record."""

MAX_LINE = 1024 * 1024
"""Bytes of one encoded `l` line, at most (a message and a traceback, each cut and at worst
escaped six-fold, still fit)."""

KEPT_WHEN_CUT = ("request_id", "traceback")
"""The `with` entries a line over MAX_LINE keeps; the others give way to a `cut` marker."""


class ProcessorLogHandler(logging.Handler):
    """Sends each record to the processor as one `l` line through `send`."""

    def __init__(
        self, send: Callable[[bytes], None], redaction: Optional[Redaction] = None
    ) -> None:
        super().__init__()
        self._send = send
        self._redaction = redaction or Redaction([])

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
        """The JSON text of one record: secrets masked, long strings cut, at most MAX_LINE."""
        mask = self._redaction
        extra = mask.value(getattr(record, "with", None) or {}, _loggable)
        if not isinstance(extra, dict):
            extra = {"with": extra}
        extra = _cut_strings(extra)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            extra.setdefault("request_id", request_id)
        if record.exc_info:
            traceback = logging.Formatter().formatException(record.exc_info)
            extra["traceback"] = _cut(mask.text(traceback))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        entry = {
            "datetime": f"{stamp},{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "message": _cut(mask.text(record.getMessage())),
            "with": extra,
        }
        text = _encode(entry)
        size = len(text.encode())
        if size <= MAX_LINE:
            return text
        kept = {k: extra[k] for k in KEPT_WHEN_CUT if k in extra}
        kept["cut"] = f"this record was {size} bytes; its other `with` values were cut"
        return _encode({**entry, "with": kept})


def _encode(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False)


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}... [{len(text) - MAX_MESSAGE} more characters cut]"


def _cut_strings(value: Any) -> Any:
    """`value` (masked, JSON-ready) with every string cut to MAX_MESSAGE characters."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, dict):
        return {_cut_strings(k): _cut_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item) for item in value]
    return value


def _loggable(value: Any) -> str:
    """A value json cannot encode: its `__log__()` (Nuclio's hook), else its repr."""
    hook = getattr(value, "__log__", None)
    return str(hook() if callable(hook) else repr(value))

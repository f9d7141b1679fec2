"""Log output: one JSON object per line (default off a terminal) or readable lines, with
secrets masked in the record's fields before either format encodes them (wrapper.secrets)."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
from typing import Any, Optional, TextIO, Union

from wrapper.secrets import Redaction

REQUEST_ID: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "request_id", default=None
)
"""The id of the event being handled, added to every log line written while handling it."""

WORKER_ID: Optional[str] = None
"""This worker's id (serve: 0..N-1, a replacement takes the id of the worker it replaces; the
nuclio door: the processor's --worker-id), on every log line once set; None in a master."""


class MaskingFormatter(logging.Formatter):
    """A formatter that masks secrets in a record's fields before it encodes them."""

    def __init__(self, redaction: Optional[Redaction] = None) -> None:
        super().__init__()
        self.redaction = redaction or Redaction([])

    def fields(self, record: logging.LogRecord) -> tuple[str, Any, Optional[str]]:
        """The record's message, `with` values and exception text, masked."""
        mask = self.redaction
        extra = getattr(record, "with", None)
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return (
            mask.text(record.getMessage()),
            mask.value(extra) if extra else None,
            mask.text(exception) if exception is not None else None,
        )


class JSONFormatter(MaskingFormatter):
    """`{"time", "level", "logger", "message", "request_id"?, "with"?, "exception"?}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        message, extra, exception = self.fields(record)
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if WORKER_ID is not None:
            entry["worker_id"] = WORKER_ID
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if extra:
            entry["with"] = extra
        if exception is not None:
            entry["exception"] = exception
        return json.dumps(entry, default=repr, ensure_ascii=False)


COLOURS = {"debug": "2", "info": "32", "warning": "33", "error": "1;31", "critical": "1;31"}
"""ANSI colours of the levels (dim, green, yellow, bold red); request ids are cyan, worker ids
dim."""


def _painted(text: str, colour: Union[str, bool, None]) -> str:
    """`text` in `colour` (an ANSI code); as it is for none (False, None)."""
    return f"\x1b[{colour}m{text}\x1b[0m" if colour else text


class TextFormatter(MaskingFormatter):
    """`HH:MM:SS.mmm level w<worker> [request id] message key=value` for people reading a
    terminal; coloured when `colour` (a terminal that takes it)."""

    def __init__(self, redaction: Optional[Redaction] = None, colour: bool = False) -> None:
        super().__init__(redaction)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        message, extra, exception = self.fields(record)
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        request_id = REQUEST_ID.get()
        level = record.levelname.lower()
        paint = self.colour
        parts = [stamp, _painted(f"{level:<7}", paint and COLOURS.get(level))]
        if WORKER_ID is not None:
            parts.append(_painted(f"w{WORKER_ID}", paint and "2"))
        if request_id is not None:
            parts.append(_painted(f"[{request_id[:12]}]", paint and "36"))
        parts.append(message)
        if isinstance(extra, dict):
            parts.append(" ".join(f"{k}={v!r}" for k, v in extra.items()))
        text = " ".join(parts)
        if exception is not None:
            text += "\n" + exception
        return text


def _iso(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(
    level: str = "info", log_format: str = "auto", stream: Optional[TextIO] = None
) -> None:
    """Send the runtime's and the user's log records to `stream` (stderr) in one format,
    with secrets (wrapper.secrets) masked in every line."""
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    redaction = Redaction.from_environment()
    colour = stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    formatter = (
        JSONFormatter(redaction) if log_format == "json" else TextFormatter(redaction, colour)
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.setLevel(level.upper())  # also for loggers that skip their level (nuclio-sdk's)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

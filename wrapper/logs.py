"""Log output: one JSON object per line (default off a terminal) or readable lines."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
from typing import Any, Optional, TextIO

REQUEST_ID: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "request_id", default=None
)
"""The id of the event being handled, added to every log line written while handling it."""

WORKER_ID: Optional[str] = None
"""This worker's id (serve: 0..N-1, a replacement takes the id of the worker it replaces; the
nuclio door: the processor's --worker-id), on every log line once set; None in a master."""

SECRET_VARIABLES = ("GIT_TOKEN", "GIT_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""Environment variables whose values never appear in a log line (replaced by `***`)."""


class JSONFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id"?, "with"?, "exception"?}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if WORKER_ID is not None:
            entry["worker_id"] = WORKER_ID
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        extra = getattr(record, "with", None)
        if extra:
            entry["with"] = extra
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS.mmm level [request id] message key=value` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        request_id = REQUEST_ID.get()
        parts = [stamp, f"{record.levelname.lower():<7}"]
        if WORKER_ID is not None:
            parts.append(f"w{WORKER_ID}")
        if request_id is not None:
            parts.append(f"[{request_id[:12]}]")
        parts.append(record.getMessage())
        extra = getattr(record, "with", None)
        if extra:
            parts.append(" ".join(f"{k}={v!r}" for k, v in extra.items()))
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _iso(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines with every known secret value replaced by `***`."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted(secrets, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def configure_logging(
    level: str = "info", log_format: str = "auto", stream: Optional[TextIO] = None
) -> None:
    """Send the runtime's and the user's log records to `stream` (stderr) in one format,
    with the values of SECRET_VARIABLES masked in every line."""
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    formatter: logging.Formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    secrets = [os.environ[name] for name in SECRET_VARIABLES if len(os.environ.get(name, "")) >= 4]
    if secrets:
        formatter = RedactingFormatter(formatter, secrets)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.setLevel(level.upper())  # also for loggers that skip their level (nuclio-sdk's)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

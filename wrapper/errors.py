"""The runtime's error hierarchy and the one table mapping outcomes to exit codes."""

from __future__ import annotations

import enum
from typing import Any, Optional


class ExitCode(enum.IntEnum):
    """Process exit codes of every door (DESIGN §5); docs/exit-codes.md mirrors this table."""

    COMPLETED = 0
    HANDLER_FAILED = 1
    BAD_INPUT = 2
    SOURCE_FAILED = 3
    INIT_FAILED = 4
    INTERNAL_ERROR = 5
    STOPPED = 143


class WrapperError(Exception):
    """A failure the runtime can explain to the user in one message."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str, details: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class SpecError(WrapperError):
    """A bad spec document, flag, environment variable or argument: nothing ran."""

    exit_code = ExitCode.BAD_INPUT


class SignatureMismatch(SpecError):
    """Arguments given by the spec do not fit a function's signature."""


class SourceError(WrapperError):
    """The user's code could not be fetched, unpacked or written."""

    exit_code = ExitCode.SOURCE_FAILED


class UnsafeArchiveError(SourceError):
    """An archive member would escape the target, is a device, or breaks a limit."""


class LoadError(SourceError):
    """The user's code was materialised but could not be imported or resolved."""


class HandlerModuleNotFound(LoadError):
    """The module named by the handler reference does not exist under the source root."""


class UserCodeSyntaxError(LoadError):
    """The user's code does not compile; the message names file and line."""


class UserImportError(LoadError):
    """Importing the user's module raised (a missing dependency, module-level code failing)."""


class HandlerNotFound(LoadError):
    """The module has no such callable; the message lists the callables it has."""


class ShadowingError(LoadError):
    """A user module would hide the runtime's own package."""


class InitError(WrapperError):
    """The init function (or Nuclio's init_context) raised."""

    exit_code = ExitCode.INIT_FAILED


class HTTPError(Exception):
    """Raise from a handler to answer with this status and body instead of a 500."""

    def __init__(self, status: int, body: Any = None, content_type: Optional[str] = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.content_type = content_type

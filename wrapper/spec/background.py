"""Validate the run document in a forked child while the caller goes on starting up.

Importing pydantic and building the models costs ~0.25 s here; done in a child process it
overlaps the caller's own imports (gunicorn, uvicorn, nuclio-sdk), and the caller gets the
validated document as JSON, never importing pydantic itself. The answer is a file, so every
process forked from the caller meanwhile (serve workers) can read it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import traceback
from typing import Any, Callable, Optional

from wrapper.errors import SpecError, WrapperError
from wrapper.plan import FunctionPlan


class PendingValidation:
    """A document being validated by `build()` in a child process; `plan()` waits for it."""

    def __init__(self, build: Callable[[], Any], folder: Optional[str] = None) -> None:
        """Start `build()` in a child; its answer goes to a file in `folder` (default: the
        temp dir), which `close()` removes."""
        self._answer: Optional[dict[str, Any]] = None
        if not hasattr(os, "fork"):
            self._answer = _answer(build)
            return
        handle, self._path = tempfile.mkstemp(prefix="spec-", suffix=".json", dir=folder)
        os.close(handle)
        self._owner = os.getpid()
        self._done, finished = os.pipe()  # EOF on `_done` once the child has answered
        self._pid = os.fork()
        if self._pid == 0:  # the child: validate, answer, leave without any cleanup
            os.close(self._done)
            with open(self._path, "w") as out:
                json.dump(_answer(build), out)
            os._exit(0)
        os.close(finished)

    def plan(self) -> FunctionPlan:
        """The validated document's function plan; a bad document raises SpecError."""
        answer = self._wait()
        if "document" in answer:
            return FunctionPlan.from_dump(answer["document"])
        if "error" in answer:
            raise SpecError(answer["error"])
        raise WrapperError(f"internal error while validating the spec: {answer['internal']}")

    def close(self) -> None:
        """Remove the answer file (only the process that started the validation does)."""
        if hasattr(self, "_path") and os.getpid() == self._owner:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def _wait(self) -> dict[str, Any]:
        if self._answer is None:
            while os.read(self._done, 1):
                pass
            with contextlib.suppress(ChildProcessError):  # a forked worker has none to reap
                os.waitpid(self._pid, 0)
            with open(self._path) as stream:
                text = stream.read()
            self._answer = json.loads(text) if text else {"internal": "the validator died"}
        return self._answer


def _answer(build: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"document": build().model_dump(mode="json")}
    except SpecError as exc:
        return {"error": exc.message}
    except Exception:
        return {"internal": traceback.format_exc()}

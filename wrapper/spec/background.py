"""Validate the run document in a forked child while the parent goes on starting up.

Importing pydantic and building the models costs ~0.2 s here; done in a child process it
overlaps the parent's own imports (gunicorn, uvicorn, nuclio-sdk), and the parent receives
the validated document as JSON, never importing pydantic itself.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any, Callable

from wrapper.errors import SpecError, WrapperError
from wrapper.plan import FunctionPlan


class PendingValidation:
    """A document being validated by `build(...)` in a child process; `result()` waits."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._inline = not hasattr(os, "fork")
        if self._inline:
            self._answer = _answer(build)
            return
        read, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: validate, answer, leave without any cleanup
            os.close(read)
            with os.fdopen(write, "w") as out:
                json.dump(_answer(build), out)
            os._exit(0)
        os.close(write)
        self._read = read

    def plan(self) -> FunctionPlan:
        """The validated document's function plan; a bad document raises SpecError."""
        return FunctionPlan.from_dump(self.result())

    def result(self) -> dict[str, Any]:
        """The validated document (`model_dump(mode="json")`); a bad one raises SpecError."""
        if self._inline:
            answer = self._answer
        else:
            with os.fdopen(self._read) as stream:
                text = stream.read()
            os.waitpid(self._pid, 0)
            answer = json.loads(text) if text else {"internal": "the validator died"}
        if "document" in answer:
            return dict(answer["document"])
        if "error" in answer:
            raise SpecError(answer["error"])
        raise WrapperError(f"internal error while validating the spec: {answer['internal']}")


def _answer(build: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"document": build().model_dump(mode="json")}
    except SpecError as exc:
        return {"error": exc.message}
    except Exception:
        return {"internal": traceback.format_exc()}

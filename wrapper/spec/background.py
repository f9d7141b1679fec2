"""Validate the run document in a forked child while the caller goes on starting up.

Importing pydantic and building the spec models costs ~0.25 s here. A door that cares about
start-up calls `prewarm()` first thing: a child process forks and imports them while the
parent parses its arguments and imports its own stack (gunicorn, uvicorn, nuclio-sdk); then
`validate(settings)` hands the child the settings, and `plan()` reads the verdict. The verdict
is a file, so every process forked from the caller meanwhile (serve workers) can read it too;
the parent never imports pydantic.
"""

from __future__ import annotations

import contextlib
import gc
import os
from typing import TYPE_CHECKING, Any, Optional

from wrapper.errors import SpecError, WrapperError

if TYPE_CHECKING:
    from wrapper.plan import FunctionPlan

_warm: Optional[_Validator] = None

DOOR_ACTIONS = {"job": ("job",), "serve": ("serve",), "nuclio": ("serve",)}
"""The `task.action` each door runs when a document names one (`invoke` runs any)."""


def prewarm() -> None:
    """Fork the validator now, before arguments are parsed (a no-op without fork)."""
    global _warm
    if _warm is None and hasattr(os, "fork"):
        _warm = _Validator()


def validate(settings: Any, folder: Optional[str] = None) -> PendingValidation:
    """Validate the document these settings describe in the (pre-warmed) validator."""
    global _warm
    validator, _warm = _warm, None
    if validator is None and not hasattr(os, "fork"):
        return PendingValidation(None, _answer(settings))
    validator = validator or _Validator()
    validator.submit(settings, folder)
    return PendingValidation(validator, None)


class PendingValidation:
    """A document under validation; `plan()` waits for the verdict."""

    def __init__(self, validator: Optional[_Validator], answer: Optional[dict[str, Any]]):
        self._validator, self._answer = validator, answer
        self._owner: Optional[int] = os.getpid()  # who warns about the document, once

    def document(self) -> dict[str, Any]:
        """The validated document, dumped as JSON; a bad document raises SpecError. The
        process that started the validation logs the document's warnings the first time."""
        if self._answer is None:
            assert self._validator is not None
            self._answer = self._validator.verdict()
        answer = self._answer
        if "document" in answer:
            if self._owner == os.getpid():
                self._owner = None
                _warn(answer["document"])
            return answer["document"]  # type: ignore[no-any-return]
        if "error" in answer:
            raise SpecError(answer["error"])
        raise WrapperError(f"internal error while validating the spec: {answer['internal']}")

    def plan(self, door: str = "job") -> FunctionPlan:
        """The validated document's function plan for `door` (the command running it); a bad
        document, or one whose `task.action` is for another door, raises SpecError."""
        from wrapper.plan import FunctionPlan

        document = self.document()
        action = self._answer.get("action") if self._answer else None
        if action and door in DOOR_ACTIONS and action not in DOOR_ACTIONS[door]:
            raise SpecError(
                f"task.action: the document is for the {action!r} action, which fn-wrapper "
                f"{door} does not run (it runs {' or '.join(map(repr, DOOR_ACTIONS[door]))}): "
                f"use fn-wrapper {action}, or change task.action"
            )
        return FunctionPlan.from_dump(document)

    def event_plan(self, door: str) -> FunctionPlan:
        """The plan of a door that answers events (serve, invoke, nuclio): it refuses
        `run.inputs`, the entities only the job door resolves."""
        plan = self.plan(door)
        if plan.inputs:
            raise SpecError(
                "run.inputs: entity inputs are resolved by the job door (fn-wrapper job)"
            )
        return plan

    def close(self) -> None:
        """Remove the verdict file (only the process that started the validation does)."""
        if self._validator is not None:
            self._validator.remove()


def _warn(document: dict[str, Any]) -> None:
    """Warn of what a document gives that a local run does not use."""
    import logging

    log = logging.getLogger("wrapper.spec")
    unmapped = (document.get("nuclio") or {}).get("unmapped")
    if unmapped:
        log.warning("Nuclio config: no meaning here, not used: %s", ", ".join(unmapped))
    references = [e["name"] for e in document["task"]["envs"] if e.get("value_from")]
    if references:
        log.warning(
            "task.envs %s: set from valueFrom references where the rendered manifests run;"
            " not set by a local run (set them in the environment)",
            ", ".join(references),
        )


class _Validator:
    """A child process that imports the spec models at once, then validates what it is sent.

    It forks before anything else is imported (the child imports only what it needs); the
    verdict file is made later, by `submit`, and its path travels with the settings.
    """

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.path = ""
        requests, self._request = os.pipe()
        self._done, done = os.pipe()  # EOF on `_done` once the child has answered and left
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._request)
            os.close(self._done)
            _child(requests)
        os.close(requests)
        os.close(done)

    def submit(self, settings: Any, folder: Optional[str] = None) -> None:
        """Send the settings; the verdict goes to a new file (mode 0600) in `folder` (a folder
        the caller owns for as long as processes it forks read the verdict; default: the
        temporary folder)."""
        import pickle
        import tempfile

        handle, self.path = tempfile.mkstemp(prefix="fn-wrapper-spec-", suffix=".json", dir=folder)
        os.close(handle)
        with os.fdopen(self._request, "wb") as out:
            pickle.dump((self.path, settings), out)

    def verdict(self) -> dict[str, Any]:
        import json

        while os.read(self._done, 1):
            pass
        with contextlib.suppress(ChildProcessError):  # a forked worker has no child to reap
            os.waitpid(self.pid, 0)
        with open(self.path) as stream:
            text = stream.read()
        return json.loads(text) if text else {"internal": "the validator died"}

    def remove(self) -> None:
        if self.path and os.getpid() == self.owner:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _child(requests: int) -> None:
    """The validator's life: warm up, wait for settings (none: the parent gave up), answer,
    and leave by os._exit whatever happens (never back into the parent's code)."""
    try:
        # A short life that ends in os._exit: no cyclic garbage collection (the imports
        # below allocate a lot; ~15 ms less here).
        gc.disable()
        _without_pydantic_plugins()
        with contextlib.suppress(Exception):  # the slow part, while the parent works
            import wrapper.config
            import wrapper.spec.document
            import wrapper.spec.models  # noqa: F401
        with os.fdopen(requests, "rb") as stream:
            data = stream.read()
        if data:
            import json
            import pickle
            import traceback

            path, settings = pickle.loads(data)
            try:
                answer = _answer(settings)
            except BaseException:
                answer = {"internal": traceback.format_exc()}
            with open(path, "w") as out:
                json.dump(answer, out)
    finally:
        os._exit(0)


def _without_pydantic_plugins() -> None:
    """The spec models take no third-party pydantic plugins: pydantic's plugin loader is
    stood in for by one that finds none, as PYDANTIC_DISABLE_PLUGINS makes it answer. The
    real one imports importlib.metadata (with email, zipfile, csv: ~20 ms here, a seventh of
    the validator's start) only to scan entry points. Only this child is affected."""
    import sys
    import types

    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    loader = types.ModuleType("pydantic.plugin._loader")
    loader.get_plugins = tuple  # type: ignore[attr-defined]  # get_plugins() -> no plugins
    sys.modules.setdefault(loader.__name__, loader)


def _answer(settings: Any) -> dict[str, Any]:
    from wrapper.config import build_document

    try:
        document = build_document(settings)
        task = document.task
        given = task.action if "action" in task.model_fields_set else None
        return {"document": document.model_dump(mode="json"), "action": given}
    except SpecError as exc:
        return {"error": exc.message}
    except Exception:
        import traceback

        return {"internal": traceback.format_exc()}

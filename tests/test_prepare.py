"""prepare_handler: the path from a validated document to a ready PreparedHandler."""

from __future__ import annotations

import logging
import sys

import pytest

from wrapper.events import make_event
from wrapper.plan import FunctionPlan
from wrapper.prepare import prepare_handler
from wrapper.sources.settings import SourceSettings
from wrapper.spec.document import validate_document


def document(python_version: str, **run: object) -> FunctionPlan:
    return FunctionPlan.from_dump(
        validate_document(
            {
                "function": {
                    "name": "demo",
                    "python_version": python_version,
                    "code": "def init(context, greeting):\n"
                    "    context.user_data.greeting = greeting\n"
                    "def handler(context, event, punctuation):\n"
                    "    return context.user_data.greeting + punctuation\n",
                    "init_function": "init",
                },
                "run": run,
            }
        ).model_dump(mode="json")
    )


def test_document_to_started_function(tmp_path) -> None:
    running = "PYTHON{}_{}".format(*sys.version_info[:2])
    spec = document(running, parameters={"punctuation": "!"}, init_parameters={"greeting": "hi"})
    function = prepare_handler(
        spec, trigger_kind="http", source_settings=SourceSettings(cache_dir=tmp_path)
    )
    function.start()
    reply = function.respond(make_event(b""))
    assert (reply.status, reply.body) == (200, b"hi!")
    assert function.context.trigger.kind == "http"


def test_a_different_python_version_is_a_warning_not_an_error(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    other = "PYTHON3_9" if sys.version_info[:2] != (3, 9) else "PYTHON3_13"
    spec = document(other, parameters={"punctuation": "."}, init_parameters={"greeting": "yo"})
    caplog.set_level(logging.WARNING, logger="wrapper.prepare")
    prepare_handler(spec, trigger_kind="http", source_settings=SourceSettings(cache_dir=tmp_path))
    running = "{}.{}".format(*sys.version_info[:2])
    wanted = other.removeprefix("PYTHON").replace("_", ".")
    assert [r.getMessage() for r in caplog.records] == [
        f"function demo asks for Python {wanted}; running on {running}"
    ]

"""Validation in a forked child: the verdict reaches the caller and processes forked later."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wrapper.errors import SpecError
from wrapper.settings import SOURCE_OPTIONS, resolve
from wrapper.spec import background


def settings(**given: object):  # type: ignore[no-untyped-def]
    return resolve(given, SOURCE_OPTIONS, {})


def test_a_prewarmed_validator_answers_with_the_plan() -> None:
    background.prewarm()
    pending = background.validate(settings(code="def handler(): pass", parameters={"n": 1}))
    plan = pending.plan()
    assert (plan.code, plan.handler, plan.parameters) == (
        "def handler(): pass",
        "handler",
        {"n": 1},
    )
    assert plan.python_version.startswith("PYTHON3_")
    pending.close()


def test_a_bad_document_is_a_spec_error_naming_the_field() -> None:
    pending = background.validate(settings(code="x = 1", python_version="PYTHON3_8"))
    with pytest.raises(SpecError, match=r"function\.python_version: 'PYTHON3_8' is not one of"):
        pending.plan()
    pending.close()


def test_processes_forked_meanwhile_read_the_same_verdict_and_only_the_owner_cleans_up() -> None:
    pending = background.validate(settings(code="def handler(): pass", name="shared"))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # like a serve worker forked before the verdict
        os.close(read)
        try:
            name = pending.plan().name
            pending.close()  # not the owner: must leave the file for the others
        finally:
            os.write(write, name.encode() if "name" in locals() else b"?")
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 100) == b"shared"
    assert pending.plan().name == "shared"  # the file is still there for the owner
    path = Path(pending._validator.path)  # type: ignore[union-attr]
    pending.close()
    assert not path.exists()

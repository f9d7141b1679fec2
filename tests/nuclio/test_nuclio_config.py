"""The nuclio door given a Nuclio function config as its spec (`--spec function.yaml`), as a
processor would start it: the handler it passes wins, the config gives the code and env."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from tests.nuclio.conftest import FakeProcessor, event

CONFIGS = Path(__file__).resolve().parents[1] / "nuclio_configs"


def test_the_nuclio_door_runs_the_greeter_from_its_config(
    tmp_path: Path, processor: Callable[..., FakeProcessor]
) -> None:
    shutil.copytree(CONFIGS / "greeter", tmp_path / "greeter")
    config = str(tmp_path / "greeter" / "function.yaml")
    # the processor's --handler names a module on its PYTHONPATH (here a decoy): the config's
    # code is the one loaded, with the config's env
    fake = processor("def handler(context, event):\n    return 'decoy'\n", "--spec", config,
                     module="greeter")  # fmt: skip
    answer = fake.call(event(b"Ada"))
    assert answer.response["status_code"] == 200, fake.output()
    assert answer.body == b"Hello, Ada!"
    assert "no meaning here, not used: spec.platform" in fake.output()

"""`fn-wrapper serve --spec function.yaml`: a Nuclio function served as its config says (its
handler, environment, HTTP workers and event timeout), on a real gunicorn."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import yaml

from tests.serve.conftest import Served

CONFIGS = Path(__file__).resolve().parents[1] / "nuclio_configs"


def booted_workers(served: Served) -> int:
    return sum(line["message"].startswith("Booting worker") for line in served.log_lines())


def test_the_greeter_is_served_with_its_configs_handler_env_and_workers(
    tmp_path: Path, start_server: Callable[..., Served]
) -> None:
    shutil.copytree(CONFIGS / "greeter", tmp_path / "greeter")
    config = str(tmp_path / "greeter" / "function.yaml")
    served = start_server("", source=["--spec", config])
    served.wait(lambda: booted_workers(served) == 2)  # numWorkers: 2, not the CPU count
    status, headers, body = served.request("POST", "/", b"Ada")
    assert (status, body, headers["x-greeter"]) == (200, b"Hello, Ada!", "greeter.py")
    warnings = [line["message"] for line in served.log_lines() if line["level"] == "warning"]
    assert (
        warnings.count(
            "Nuclio config: no meaning here, not used: spec.platform, spec.build.baseImage,"
            " spec.triggers.nightly (kind cron: kept for render)"
        )
        == 1
    )  # once, by the master: not once per worker
    flagged = start_server("", "--workers", "1", source=["--spec", config])
    flagged.wait(lambda: booted_workers(flagged) == 1)  # the flag wins
    assert flagged.request("POST", "/", b"Bo")[2] == b"Hello, Bo!"
    assert booted_workers(served) == 2 and booted_workers(flagged) == 1


def test_the_event_timeout_is_the_serve_timeout(
    tmp_path: Path, start_server: Callable[..., Served]
) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "slow.py").write_text(
        "import time\n\ndef handler(context, event):\n    time.sleep(float(event.body))\n"
        "    return 'done'\n"
    )
    config = {"spec": {"handler": "slow:handler", "eventTimeout": "1s",
                       "triggers": {"http": {"kind": "http", "numWorkers": 1}}}}  # fmt: skip
    (folder / "function.yaml").write_text(yaml.safe_dump(config))
    served = start_server("", source=["--code-src", str(folder)])
    assert served.request("POST", "/", b"0.1")[:3:2] == (200, b"done")
    assert served.request("POST", "/", b"3")[0] == 504  # 1 s, not the 60 s default

"""A function's runs from the Python API: each one a door started in a child process on the
run spec document, with the caller's store and project (DESIGN §11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Optional

from wrapper.entities.record import new_id
from wrapper.entities.scratch import scratch_folder
from wrapper.errors import WrapperError

if TYPE_CHECKING:
    from wrapper.api.functions import Function
    from wrapper.api.serving import ServeRun
    from wrapper.entities.objects import Entity
    from wrapper.entities.run import Run

SETTLED = (
    "SPEC", "CODE", "BASE64", "CODE_SRC", "HANDLER", "INIT_FUNCTION", "INIT_PARAMETERS",
    "PARAMETERS", "INPUTS", "NAME", "PYTHON_VERSION", "REQUIREMENTS", "STORE", "PROJECT",
    "RUN_ID", "STATUS_FILE",
)  # fmt: skip
"""The twins the API settles itself (in the run document and its flags): a child never reads
them, so a variable left in the caller's environment cannot change a function it did not name."""


class RunFailed(WrapperError):
    """A door that could not start or run: its own message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[assignment]


class LocalRun:
    """A run of one function in a child process: its id, folder, log, and its door's process."""

    action = ""

    def __init__(self, function: Function, document: dict[str, Any]) -> None:
        self.function, self.project = function, function.project
        self.id = new_id()
        self.folder = scratch_folder(f"fn-wrapper-{self.action}-{self.id}-")
        self.spec_file = self.folder / "run.json"
        self.spec_file.write_text(json.dumps(document))
        self.log_file = self.folder / "run.log"
        self.process: Optional[subprocess.Popen[bytes]] = None

    def start(self, door: str, *flags: str, new_session: bool = False) -> None:
        """Start `fn-wrapper DOOR --spec … FLAGS…`; its output goes to the run's log."""
        command = [sys.executable, "-m", "wrapper", door, "--spec", str(self.spec_file), *flags]
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(),
                start_new_session=new_session,
            )

    def store_flags(self) -> tuple[str, ...]:
        return ("--store", self.project.store.uri, "--project", self.project.name)

    def logs(self) -> str:
        """What the door wrote (its log lines, and the job's summary line)."""
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, as a platform stops a run: the door ends it gracefully."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait()

    def failure(self) -> str:
        """The door's last error line (its message), else the end of its log."""
        lines = self.logs().strip().splitlines()
        for line in reversed(lines):
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") == "error":
                    return str(entry.get("message"))
            elif "error" in line:
                return line
        return "\n".join(lines[-5:]) or "no output"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.function.name!r}, id={self.id!r})"


class JobRun(LocalRun):
    """A job: `wait()`, `refresh()`, `status` (the status document), `results()`, `outputs()`."""

    action = "job"

    def __init__(self, function: Function, document: dict[str, Any]) -> None:
        super().__init__(function, document)
        self._run: Optional[Run] = None
        self.exit_code: Optional[int] = None

    def wait(self, log_info: bool = True, timeout: Optional[float] = None) -> JobRun:
        """Wait for the job to end (at most `timeout` seconds); its final status is read.
        `log_info` is DigitalHub's; the door logs the run's progress itself."""
        assert self.process is not None
        self.exit_code = self.process.wait(timeout)
        return self.refresh()

    def stop(self) -> None:
        """SIGTERM: the job door stops the handler where it is and records STOPPED."""
        super().stop()
        self.exit_code = self.process.returncode if self.process is not None else None
        self.refresh()

    def refresh(self) -> JobRun:
        """Read the run's status document again, from the store."""
        from wrapper.entities.run import Run
        from wrapper.entities.store import EntityNotFound

        store = self.project.store
        try:
            document = store.get_run(self.project.name, self.id)
        except EntityNotFound:  # not written yet, or a door that stopped before the run
            document = {"id": self.id, "project": self.project.name, "state": "RUNNING"}
            if self.process is not None and self.process.poll() is not None:
                document.update(state="ERROR", message=self.failure())
        self._run = Run.from_document(document, store)
        return self

    @property
    def run(self) -> Run:
        if self._run is None:
            self.refresh()
        assert self._run is not None
        return self._run

    @property
    def status(self) -> SimpleNamespace:
        """The status document as it was last read (`refresh()` reads it again)."""
        return self.run.status

    def results(self) -> dict[str, Any]:
        return self.run.results()

    def result(self, name: str) -> Any:
        return self.run.result(name)

    def outputs(self, as_key: bool = False, as_dict: bool = False) -> dict[str, Any]:
        return self.run.outputs(as_key, as_dict)

    def output(self, name: str, as_key: bool = False, as_dict: bool = False) -> Entity:
        return self.run.output(name, as_key, as_dict)  # type: ignore[no-any-return]


def start_job(function: Function, document: dict[str, Any]) -> JobRun:
    """The job door started on the document, with the run's id and status file."""
    job = JobRun(function, document)
    status_file = str(job.folder / "status.json")
    job.start("job", *job.store_flags(), "--run-id", job.id, "--status-file", status_file)
    return job


def start_serve(function: Function, document: dict[str, Any]) -> ServeRun:
    from wrapper.api.serving import ServeRun

    served = ServeRun(function, document)
    served.begin()
    return served


class BuildRun(LocalRun):
    """A build: the image it made (None for the context only) and the context folder."""

    action = "build"

    def __init__(self, function: Function, document: dict[str, Any]) -> None:
        super().__init__(function, document)
        self.image: Optional[str] = None
        self.context = self.folder / "context"
        self.summary: dict[str, Any] = {}

    @property
    def status(self) -> SimpleNamespace:
        state = "COMPLETED" if self.summary else "ERROR"
        return SimpleNamespace(state=state, **self.summary)


def run_build(function: Function, document: dict[str, Any], options: dict[str, Any]) -> BuildRun:
    """The build action on the document; with an image built, the function's new version
    names it. The run's inputs and parameters are recorded, not used."""
    build = BuildRun(function, document)
    builder = options.get("builder")
    default = f"localhost/{function.project.name}/{function.name}:{build.id[:12]}"
    target = options.get("target_image") or default
    flags = ["--context-dir", str(build.context)]
    if builder:
        flags += ["--builder", builder]
    if builder != "none":
        flags += ["--target-image", target]
    if options.get("push_image"):
        flags.append("--push-image")
    for folder in options.get("wheelhouse") or ():
        flags += ["--wheelhouse", str(folder)]
    build.start("build", *flags)
    assert build.process is not None
    code = build.process.wait()
    if code != 0:
        raise RunFailed(f"build of {function.name!r} failed: {build.failure()}", code)
    build.summary = json.loads(build.logs().strip().splitlines()[-1])
    build.image = build.summary.get("image")
    if build.image:
        function.with_image(build.image)
    return build


class RenderedRun(LocalRun):
    """`local_execution=False`: the manifests of the deploy door, written to `manifests`."""

    def __init__(self, function: Function, document: dict[str, Any]) -> None:
        self.action = document["task"]["action"]
        super().__init__(function, document)
        self.manifests = self.folder / "manifests"

    @property
    def files(self) -> list[Path]:
        return sorted(self.manifests.iterdir())

    @property
    def apply(self) -> str:
        """How to deploy them (no cluster is reached from here)."""
        return f"kubectl apply -f {self.manifests}"


def render(function: Function, document: dict[str, Any], target: str) -> RenderedRun:
    """`fn-wrapper render` on the document, into the run's folder."""
    rendered = RenderedRun(function, document)
    rendered.start("render", "--target", target, "--output", str(rendered.manifests))
    assert rendered.process is not None
    code = rendered.process.wait()
    if code != 0:
        raise RunFailed(f"render of {function.name!r} failed: {rendered.failure()}", code)
    return rendered


def child_environment() -> dict[str, str]:
    """The caller's environment, less the twins the API settles."""
    settled = {f"FN_WRAPPER_{name}" for name in SETTLED}
    return {k: v for k, v in os.environ.items() if k not in settled}

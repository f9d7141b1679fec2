"""`fn-wrapper serve`'s process model: gunicorn embedded through its application API.

The master binds both ports first (a port in use is one clear error, at once, rather than
gunicorn's five retries), starts the admin endpoints in a thread, and keeps `workers`
processes alive; each worker loads the function after fork (unless pre-loading) and serves
the ASGI app on uvicorn. A worker that dies is replaced and runs init again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.sock import create_sockets

from wrapper.errors import ExitCode, SpecError, WrapperError
from wrapper.invocation import PreparedHandler
from wrapper.serve.admin import AdminServer
from wrapper.serve.app import ServeApp, ServeOptions
from wrapper.serve.console import Console, FunctionCard
from wrapper.serve.metrics import is_ready, ready_workers, started_workers, worker_died
from wrapper.serve.reload import Watcher, check_in_child
from wrapper.serve.state import read_failure, record_reload, take_failure
from wrapper.serve.worker import ServeWorker

log = logging.getLogger("wrapper.serve")

HARD_LIMIT_MARGIN = 30
"""Seconds past the request timeout after which the master kills a stuck worker."""


@dataclass(frozen=True)
class ServeSettings:
    """The serve door's knobs (flags and environment twins in wrapper.cli.serve)."""

    host: str = "0.0.0.0"
    port: int = 8080
    admin_host: str = "0.0.0.0"
    admin_port: int = 8082
    workers: int = 1
    concurrency: int = 1
    request_timeout: float = 60.0
    graceful_timeout: float = 30.0
    keep_alive: float = 5.0
    max_body_bytes: int = 32 * 1024 * 1024
    preload: bool = False
    access_log: bool = False
    log_level: str = "info"
    reload: Optional[Path] = None
    """The local source to watch (--reload): a change replaces the workers (reload.py)."""
    console: Optional[FunctionCard] = None
    """The test page's card (--dev, --reload): the page is on the admin port (console.py)."""


def serve(load: Callable[[], PreparedHandler], settings: ServeSettings, state_dir: Path) -> int:
    """Run the server until SIGTERM (exit 0) or a worker fails to start (its exit code);
    `state_dir` (from wrapper.serve.state.new_state_dir) is removed at the end."""
    listener = _bind(settings.host, settings.port, "--port")
    console = _console(settings, state_dir)
    options = _options(settings, state_dir, console)
    application = _Application(ServeApp(load, options), settings, state_dir)
    application.admin = _admin_server(
        settings,
        state_dir,
        listener,
        console,
        workers=settings.workers,
        live=application.live_pids,
        start_failures=application.start_failures,
    )
    master = os.getpid()
    try:
        application.run(listener)
        code = 0
    except SystemExit as stop:
        if os.getpid() != master:
            raise  # a worker's own exit, on its way out of the forked copy of this call
        code = stop.code if isinstance(stop.code, int) else 1
    except HaltServer as halt:  # a second worker failing while the master stops for the first
        code = halt.exit_status
    failure = read_failure(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    if failure is not None:
        raise _WorkerFailure(failure)
    return code


def serve_in_process(
    load: Callable[[], PreparedHandler], settings: ServeSettings, state_dir: Path
) -> int:
    """--dev: the function served by this process alone (no gunicorn, no fork), so that a
    handler's `breakpoint()` stops here, on this terminal; the admin endpoints as usual. A
    call past the timeout answers 504 but nothing is recycled (there is no other process)."""
    import wrapper.logs
    from wrapper.serve.worker import Server, run_server, uvicorn_config

    listener = _bind(settings.host, settings.port, "--port")
    console = _console(settings, state_dir)
    options = _options(
        settings,
        state_dir,
        console,
        recycle=lambda: log.warning("--dev: one process only, so it is not recycled"),
    )
    admin = _admin_server(
        settings,
        state_dir,
        listener,
        console,
        workers=1,
        live=lambda: [os.getpid()],
        start_failures=lambda: 0,
    )
    wrapper.logs.WORKER_ID = "0"
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, _level(settings)))
    log.info(
        "--dev: serving http://%s:%d from this process alone (breakpoint() stops here)",
        settings.host, settings.port,
    )  # fmt: skip
    config = uvicorn_config(
        ServeApp(load, options),
        keep_alive=settings.keep_alive,
        graceful_timeout=settings.graceful_timeout,
        access_log=settings.access_log,
    )
    admin.start()
    try:
        with contextlib.suppress(SystemExit):  # uvicorn exits when startup (init) fails
            run_server(Server(config), [listener])
    finally:
        admin.stop()
    failure = read_failure(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    if failure is not None:
        raise _WorkerFailure(failure)
    return 0


def _admin_server(
    settings: ServeSettings,
    state_dir: Path,
    listener: socket.socket,
    console: Optional[Console],
    *,
    workers: int,
    live: Callable[[], list[int]],
    start_failures: Callable[[], int],
) -> AdminServer:
    """The admin endpoints on their port; a port that cannot be had is one clear error, with
    the function's port and the test page's socket given back."""
    try:
        return AdminServer(
            settings.admin_host,
            settings.admin_port,
            state_dir,
            workers,
            live,
            start_failures,
            console,
        )
    except OSError as exc:
        listener.close()
        if console is not None:
            console.stop()
        raise _bind_error(settings.admin_host, settings.admin_port, "--admin-port", exc) from None


def _options(
    settings: ServeSettings, state_dir: Path, console: Optional[Console], **more: Any
) -> ServeOptions:
    """How the workers (or --dev's process) handle requests."""
    return ServeOptions(
        request_timeout=settings.request_timeout,
        max_body_bytes=settings.max_body_bytes,
        concurrency=settings.concurrency,
        state_dir=state_dir,
        ship_logs=console.logs.path if console else None,
        **more,
    )


def _console(settings: ServeSettings, state_dir: Path) -> Optional[Console]:
    """The test page's endpoints, when asked for (--dev, --reload)."""
    if settings.console is None:
        return None
    return Console(
        settings.console,
        state_dir,
        settings.host,
        settings.port,
        settings.request_timeout,
        settings.max_body_bytes,
    )


def _level(settings: ServeSettings) -> int:
    return logging.getLevelName(settings.log_level.upper())  # type: ignore[no-any-return]


def _bind(host: str, port: int, flag: str) -> socket.socket:
    """A TCP socket bound to host:port, listening (gunicorn sets its backlog): with
    SO_REUSEADDR, a port another socket holds may bind and only fail to listen."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen()
    except OSError as exc:
        listener.close()
        raise _bind_error(host, port, flag, exc) from None
    return listener


def _bind_error(host: str, port: int, flag: str, exc: OSError) -> SpecError:
    reason = (exc.strerror or str(exc)).lower()
    return SpecError(f"{flag}: cannot listen on {host}:{port}: {reason}")


class _WorkerFailure(WrapperError):
    """A worker could not load the function or run init: its own error, as the master's."""

    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(str(failure.get("message")), details=failure.get("details"))
        self.exit_code = ExitCode(int(failure.get("exit_code", ExitCode.INTERNAL_ERROR)))


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: ServeApp, settings: ServeSettings, state_dir: Path) -> None:
        self.app, self.settings, self.state_dir = app, settings, state_dir
        self.admin: Optional[AdminServer] = None
        self.watcher: Optional[Watcher] = None
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        for name, value in {
            "bind": [f"{host}:{settings.port}"],
            "workers": settings.workers,
            "worker_class": ServeWorker,
            "timeout": math.ceil(settings.request_timeout) + HARD_LIMIT_MARGIN,
            "graceful_timeout": math.ceil(settings.graceful_timeout),
            "keepalive": math.ceil(settings.keep_alive),
            "preload_app": settings.preload,
            "accesslog": "-" if settings.access_log else None,
            "loglevel": settings.log_level,
            "logger_class": _RootLogger,
            "proc_name": "fn-wrapper",
            "when_ready": self._when_ready,
            "pre_fork": _number_worker,
            "child_exit": self._child_exit,
            "on_exit": self._on_exit,
        }.items():
            self.cfg.set(name, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24 writes ~/.gunicorn
            self.cfg.set("control_socket_disable", True)

    def run(self, listener: socket.socket) -> None:
        self.arbiter = _Arbiter(self)
        self.arbiter.LISTENERS = create_sockets(self.cfg, self.arbiter.log, [listener.detach()])
        self.arbiter.run()

    def live_pids(self) -> list[int]:
        """The master's current workers (read from the admin thread while the master may
        change the table: copy it, retrying if it changed mid-copy)."""
        for _ in range(10):
            try:
                return list(self.arbiter.WORKERS)
            except RuntimeError:
                continue
        return []

    def load(self) -> ServeApp:
        if self.settings.preload:
            self.app.prepare()
        return self.app

    def _when_ready(self, arbiter: Any) -> None:
        if self.admin is not None:
            self.admin.start()
        if self.settings.reload is not None:
            self.watcher = Watcher(self.settings.reload)
            self.watcher.start()

    def start_failures(self) -> int:
        """Replacement workers that failed to start (for /metrics, read by the admin thread)."""
        arbiter = getattr(self, "arbiter", None)
        return arbiter.start_failures if arbiter is not None else 0

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        started = is_ready(self.state_dir, worker.pid)
        worker_died(self.state_dir, worker.pid)
        if not started:
            arbiter.start_failed(self.state_dir)

    def _on_exit(self, arbiter: Any) -> None:
        if self.admin is not None:
            self.admin.stop()
        if self.watcher is not None:
            self.watcher.stop()


def _number_worker(arbiter: Any, worker: Any) -> None:
    """Before the fork: the lowest id 0..N-1 no live worker has (a replacement takes the id
    of the worker it replaces, as Nuclio numbers its workers); after a reload, the id of an
    old worker the new one will replace."""
    if arbiter.handover:
        worker.worker_id = arbiter.handover.pop(0)
        return
    taken = {getattr(live, "worker_id", None) for live in arbiter.WORKERS.values()}
    worker.worker_id = next(number for number in range(len(taken) + 1) if number not in taken)


class _Arbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, judging failed starts itself (`start_failed`) rather than halting on
    gunicorn's boot-error exit codes: a worker that cannot start before the server ever served
    stops it (the function cannot run); a replacement that cannot start while others serve is
    retried with back-off and reported (a log line, `fn_wrapper_worker_start_failures`).
    Its boot-error codes are ones no process exits with, and a handler calling `os._exit(3)`
    costs one worker."""

    WORKER_BOOT_ERROR = -1
    APP_LOAD_ERROR = -2

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.served = False
        """As many workers as asked for have finished init (the function can start)."""
        self.start_failures = 0
        self.failures_in_a_row = 0
        self.hold_until = 0.0
        self.retiring: set[int] = set()
        """After a reload, the old workers not yet gone (each stopped once a new one serves)."""
        self.stopping: set[int] = set()
        self.handover: list[int] = []
        """The ids the next new workers take (those of the old ones they replace)."""

    def handle_usr2(self) -> None:
        """--reload's signal (gunicorn's own meaning, a re-exec, is not offered): the new code
        checked in a child, then a new generation of workers; failing code keeps the old."""
        if self.app.settings.reload is None:
            self.log.warning("SIGUSR2 ignored: the server was not started with --reload")
            return
        failure = check_in_child(self.app.app.prepare)
        record_reload(self.state_dir, failure)  # for the test page
        if failure is not None:
            self.log.error(
                "reload: the new code cannot serve, the old code still does: %s", failure
            )
            return
        self.retiring |= set(self.WORKERS)  # also those of a reload still under way
        self.handover = list(range(self.num_workers))  # the ids 0..N-1 the old ones have
        self.log.info("reload: the new code loads: replacing %d worker(s)", self.num_workers)
        for _ in range(self.num_workers):
            self.spawn_worker()

    def start_failed(self, state_dir: Path) -> None:
        """A worker exited before it finished init: halt, or retry after a back-off."""
        serving = ready_workers(state_dir, list(self.WORKERS))
        self.served = self.served or started_workers(state_dir) >= self.num_workers
        alone = serving == 0 and self.failures_in_a_row >= RETRIES_WITH_NONE_SERVING
        if not self.served or alone:
            failure = read_failure(state_dir) or {}
            raise HaltServer("a worker could not start", failure.get("exit_code", 1))
        failure = take_failure(state_dir) or {}
        self.start_failures += 1
        self.failures_in_a_row += 1
        delay = min(RETRY_LONGEST, RETRY_FIRST * 2 ** (self.failures_in_a_row - 1))
        self.hold_until = time.monotonic() + delay
        self.log.error(
            "a replacement worker could not start (%s); %d worker(s) serve; retrying in %g s",
            failure.get("message", "it exited during init"), serving, delay,
        )  # fmt: skip

    def manage_workers(self) -> None:
        live = list(self.WORKERS)
        if self.retiring:
            self._retire(live)
            return
        if len(live) == self.num_workers and ready_workers(self.state_dir, live) == len(live):
            self.served, self.failures_in_a_row = True, 0
        super().manage_workers()

    def _retire(self, live: list[int]) -> None:
        """Stop old workers as new ones become ready, so that as many as asked for serve."""
        self.retiring &= set(live)
        self.stopping &= self.retiring
        fresh = [pid for pid in live if pid not in self.retiring]
        if len(fresh) < self.num_workers:
            self.spawn_workers_after_reload(self.num_workers - len(fresh))
        serving_old = sorted(
            (pid for pid in self.retiring if pid not in self.stopping),
            key=lambda pid: self.WORKERS[pid].age,
        )
        surplus = ready_workers(self.state_dir, fresh) + len(serving_old) - self.num_workers
        for pid in serving_old[: max(0, surplus)]:
            self.stopping.add(pid)
            self.kill_worker(pid, signal.SIGTERM)

    def spawn_workers_after_reload(self, missing: int) -> None:
        """New workers that died during a reload are replaced, as any (with back-off)."""
        if time.monotonic() >= self.hold_until:
            for _ in range(missing):
                self.spawn_worker()

    def spawn_workers(self) -> None:
        if time.monotonic() >= self.hold_until:
            super().spawn_workers()

    @property
    def state_dir(self) -> Path:
        return self.app.state_dir  # type: ignore[no-any-return]


RETRY_FIRST = 1.0
"""Seconds before the first new try after a replacement worker failed to start; doubled at each
failure in a row, up to RETRY_LONGEST."""

RETRY_LONGEST = 30.0

RETRIES_WITH_NONE_SERVING = 5
"""Failed starts in a row, with no worker serving, after which the server gives up (exit)."""


class _RootLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logs go through the root logger, so they share the runtime's format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True

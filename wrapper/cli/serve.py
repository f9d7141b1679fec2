"""`fn-wrapper serve`: the HTTP door (gunicorn + uvicorn workers, admin endpoints)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from wrapper.errors import SpecError
from wrapper.settings import (
    GRACEFUL_TIMEOUT,
    SOURCE_OPTIONS,
    STORE_OPTIONS,
    Option,
    Settings,
    byte_size,
    count,
    seconds,
)

if TYPE_CHECKING:
    from wrapper.serve.console import FunctionCard


def _port(text: str) -> int:
    """A TCP port, 1-65535."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _positive(text: str) -> int:
    """A whole number, 1 or more."""
    value = count(text)
    if value < 1:
        raise ValueError(f"{text!r} must be 1 or more")
    return value


OPTIONS = (
    *SOURCE_OPTIONS,
    Option("--host", "address to listen on", default="0.0.0.0"),
    Option("--port", "port of the function's HTTP endpoint", _port, default=8080),
    Option("--admin-host", "address of /live, /ready, /metrics (default: --host)"),
    Option("--admin-port", "port of /live, /ready and /metrics", _port, default=8082),
    Option(
        "--workers",
        "worker processes (default: the CPUs this process may use: affinity, cgroup quota)",
        _positive,
    ),
    Option(
        "--concurrency",
        "handler calls at once per worker: 1 as Nuclio does; more for I/O-bound or async code",
        _positive,
        default=1,
    ),
    Option("--timeout", "seconds a handler call may take before a 504", seconds, default=60.0),
    Option(
        "--graceful-timeout",
        "seconds in-flight requests get to finish after SIGTERM",
        seconds,
        default=GRACEFUL_TIMEOUT,
    ),
    Option(
        "--keep-alive", "seconds an idle keep-alive connection stays open", seconds, default=5.0
    ),
    Option("--max-body-size", "largest request body (413 above)", byte_size, default="32MiB"),
    Option(
        "--preload", "load the function and run init once in the master, before fork", switch=True
    ),
    Option("--access-log", "log one line per request (costs ~30 us a request)", switch=True),
    Option(
        "--dev",
        "local work: one process, no fork, so breakpoint() in the handler stops on this"
        " terminal; no request timeout unless --timeout is given; the test page on the admin"
        " port",
        switch=True,
    ),
    Option(
        "--reload",
        "local work: watch the local source and, on a change, replace the workers with the new"
        " code once it loads (code that fails keeps the old serving); needs watchfiles; the"
        " test page on the admin port",
        switch=True,
    ),
    *STORE_OPTIONS,
)


def run(settings: Settings) -> int:
    """Serve until SIGTERM; exit 0, or the exit code of a worker that could not start.

    The spec is validated in a child process while the master imports its stack; the master
    reads the verdict before gunicorn starts (a bad spec exits 2 before any worker starts).
    """
    import wrapper.logs
    from wrapper.config import source_settings
    from wrapper.serve.state import new_state_dir
    from wrapper.spec.background import validate

    state_dir = new_state_dir()  # the master's for its whole life: workers read the verdict there
    validation = validate(settings, str(state_dir))  # overlaps the imports and the boot
    from wrapper.context import make_context
    from wrapper.entities.reserved import door_entities
    from wrapper.invocation import PreparedHandler
    from wrapper.prepare import prepare_handler
    from wrapper.serve.cpus import usable_cpus
    from wrapper.serve.server import ServeSettings, serve, serve_in_process
    from wrapper.spec.nuclio import go_duration

    fetch = source_settings(settings, os.environ)
    debug = bool(settings.debug)

    def load() -> PreparedHandler:
        plan = validation.event_plan("serve")
        # each worker has a serving run of its own
        entities = door_entities(settings, plan.name, "serve", plan.project)
        return prepare_handler(
            plan,
            trigger_kind="http",
            source_settings=fetch,
            reserved=entities,
            context=make_context(
                worker_id=wrapper.logs.WORKER_ID or "0", trigger_kind="http", reserved=entities
            ),
            debug=debug,
        )

    try:
        # The verdict is read here, after this process's imports (the workers would wait for
        # it anyway): a bad spec stops before a worker starts, its warnings are logged once,
        # and a Nuclio config's HTTP workers and event timeout stand below flags and twins.
        plan = validation.event_plan("serve")
        nuclio = validation.document().get("nuclio") or {}
        timeout = settings.timeout
        if settings.layers.get("timeout") == "default" and nuclio.get("event_timeout"):
            timeout = go_duration(nuclio["event_timeout"], "spec.eventTimeout")
        elif settings.layers.get("timeout") == "default" and settings.dev:
            timeout = DEV_TIMEOUT  # a debugging session is no overrun
        workers = settings.workers or nuclio.get("workers") or usable_cpus()
        door = serve_in_process if _dev(settings) else serve
        return door(
            load,
            ServeSettings(
                host=settings.host,
                port=settings.port,
                admin_host=settings.admin_host or settings.host,
                admin_port=settings.admin_port,
                workers=1 if settings.dev else workers,
                concurrency=settings.concurrency,
                request_timeout=timeout,
                graceful_timeout=settings.graceful_timeout,
                keep_alive=settings.keep_alive,
                max_body_bytes=settings.max_body_size,
                preload=bool(settings.preload),
                access_log=bool(settings.access_log),
                log_level=settings.log_level,
                reload=_watched(plan, settings) if settings.reload else None,
                console=_card(plan, settings),
            ),
            state_dir,
        )
    finally:
        validation.close()


DEV_TIMEOUT = 86400.0
"""--dev's request timeout when --timeout is not given: a day (a debugger may hold a call)."""


def _dev(settings: Settings) -> bool:
    """Whether to serve in this process alone (--dev); refused with what needs workers."""
    if not settings.dev:
        return False
    if settings.reload:
        raise SpecError("--dev: one process cannot replace its workers (--reload): give one")
    if (settings.workers or 1) > 1:
        raise SpecError(f"--dev: one process, one worker (not --workers {settings.workers})")
    return True


def _card(plan: Any, settings: Settings) -> Optional[FunctionCard]:
    """What the test page shows of the function; None (no page) without --dev or --reload."""
    from wrapper.serve.console import FunctionCard
    from wrapper.sources.uri import redact_uri

    if not (settings.dev or settings.reload):
        return None
    if plan.code is not None or plan.base64 is not None:
        source = "inline code"
    else:
        source = redact_uri(plan.code_src or "")
    handler = plan.handler
    if plan.init_function:
        handler += f" (init: {plan.init_function})"
    return FunctionCard(plan.name, handler, source, "dev" if settings.dev else "reload")


def _watched(plan: Any, settings: Settings) -> Path:
    """What --reload watches: the local code_src (a folder or a file); anything else is
    refused, as is --preload (which loads the code once, in the master)."""
    from wrapper.serve.reload import watcher_module
    from wrapper.sources.uri import redact_uri, uri_scheme

    if settings.preload:
        raise SpecError(
            "--reload: new workers load the new code; --preload loads it once: give one"
        )
    code_src = plan.code_src or ""
    inline = plan.code is not None or plan.base64 is not None
    if inline or not code_src or uri_scheme(code_src) not in ("", "file"):
        given = "inline code" if inline else f"code_src {redact_uri(code_src)!r}"
        raise SpecError(
            f"--reload: watches a local code_src (a folder or a file), not {given}:"
            " work on a local copy"
        )
    watcher_module()
    return Path(code_src.removeprefix("file://") if uri_scheme(code_src) else code_src)

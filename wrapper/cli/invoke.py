"""`fn-wrapper invoke`: one event through the core, no server; the body goes to stdout."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from wrapper.errors import ExitCode, SpecError
from wrapper.settings import SOURCE_OPTIONS, STORE_OPTIONS, Option, Settings

OPTIONS = (
    *SOURCE_OPTIONS,
    *STORE_OPTIONS,
    Option("--body", "request body; @FILE reads a file, @- standard input", metavar="DATA"),
    Option("--method", "HTTP method (default: POST with a body, else GET)"),
    Option("--header", "request header 'Name: value' (repeat the flag for more)", repeat=True),
    Option("--path", "request path, with an optional ?query", default="/"),
    Option("--verbose", "print the status line and headers to stderr", switch=True),
)


def run(settings: Settings) -> int:
    """Load the function, run init, send one event, print the body; exit 1 on a 5xx status.

    The reply is the one serve would send (`for_http`); whatever the handler raises (any
    BaseException) is its failure: the 500 body, the log record, exit 1.
    """
    from wrapper.config import source_settings
    from wrapper.spec.background import validate

    pending = validate(settings)  # overlaps the imports below (start-up time)
    from wrapper.context import make_context
    from wrapper.entities.reserved import door_entities
    from wrapper.prepare import prepare_handler

    try:
        plan = pending.event_plan("invoke")
    finally:
        pending.close()
    entities = door_entities(settings, plan.name, "serve", plan.project)
    try:
        function = prepare_handler(
            plan,
            trigger_kind="http",
            source_settings=source_settings(settings, os.environ),
            reserved=entities,
            context=make_context(trigger_kind="http", reserved=entities),
            debug=bool(settings.debug),
        )
        event = _event(settings)
        reply = function.for_http(_respond(function, event), event)
    finally:
        entities.close()
    if settings.verbose:
        print(f"< {reply.status}", file=sys.stderr)
        if reply.content_type:
            print(f"< Content-Type: {reply.content_type}", file=sys.stderr)
        for name, value in reply.headers.items():
            print(f"< {name}: {value}", file=sys.stderr)
    body = b"" if event.method == "HEAD" else reply.body  # as serve answers HEAD
    out = sys.stdout.buffer
    out.write(body)
    if sys.stdout.isatty() and body and not body.endswith(b"\n"):
        out.write(b"\n")
    out.flush()
    return int(ExitCode.COMPLETED if reply.status < 500 else ExitCode.HANDLER_FAILED)


def _event(settings: Settings) -> Any:
    """The one event the flags describe."""
    from wrapper.events import make_event

    body = _body(settings.body)
    path, _, query = settings.path.partition("?")
    return make_event(
        body,
        method=(settings.method or ("POST" if body else "GET")).upper(),
        path=path or "/",
        headers=[_header(h) for h in settings.header or []],
        query=query,
    )


def _respond(function: Any, event: Any) -> Any:
    """Init and call the function once, in one event loop when anything is async."""
    if not function.needs_loop:
        function.start()
        return function.respond_whole(event)

    async def once() -> Any:
        await function.astart()
        return await function.arespond_whole(event)

    import asyncio

    return asyncio.run(once())


def _body(text: Any) -> bytes:
    if text is None:
        return b""
    if text == "@-":
        return sys.stdin.buffer.read()
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_bytes()
        except OSError as exc:
            raise SpecError(f"--body: cannot read {text[1:]}: {exc.strerror or exc}") from None
    return str(text).encode()


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise SpecError(f"--header: {text!r} is not 'Name: value'")
    return name.strip(), value.strip()

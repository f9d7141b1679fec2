"""`fn-wrapper nuclio`: the nuclio door, started by a Nuclio processor in place of its wrapper.

It takes the processor's command line (NUCLIO_PROTOCOL.md §2). With no source flag and no
spec it is a drop-in: `--handler module:func` is imported from PYTHONPATH as Nuclio does, and
nothing but nuclio-sdk and msgpack is imported on the way to ready. With a source (or a spec)
the code is validated and materialised first, as every door does.
"""

from __future__ import annotations

import os
from typing import Any

from wrapper.errors import ExitCode, SpecError, WrapperError
from wrapper.settings import SOURCE_OPTIONS, STORE_OPTIONS, Option, Settings, count

OPTIONS = (
    *SOURCE_OPTIONS,
    *STORE_OPTIONS,
    Option("--event-socket-path", "the processor's event socket (a Unix socket path)"),
    Option("--socket-path", "same as --event-socket-path"),
    Option("--control-socket-path", "the processor's control socket (a Unix socket path)"),
    Option("--platform-kind", "platform kind for context.platform: local or kube", default="local"),
    Option("--namespace", "namespace for context.platform", default="default"),
    Option("--worker-id", "this worker's id (context.worker_id)", default="0"),
    Option("--trigger-kind", "the trigger's kind (context.trigger.kind)", default="nuclio"),
    Option("--trigger-name", "the trigger's name (context.trigger.name)", default=""),
    Option(
        "--decode-event-strings",
        "event strings as str (the processor passes this); without it they stay bytes",
        switch=True,
    ),
    Option(
        "--connect-attempts",
        "attempts to connect each socket, one second apart",
        count,
        default=60,
    ),
)

SOURCES = ("spec", "code", "base64", "code_src")


def run(settings: Settings) -> int:
    """Load the function, connect, init, announce readiness, then answer events. A failure
    exits 1, as Nuclio's wrapper does (NUCLIO_PROTOCOL.md §7): a handler that cannot be
    loaded, an init that raised, a processor gone. Bad flags or a bad spec exit 2 (nothing
    ran), as argparse's errors do in Nuclio's wrapper too."""
    try:
        return _serve(settings)
    except SpecError:
        raise
    except WrapperError as exc:
        exc.exit_code = ExitCode.HANDLER_FAILED
        raise


def _serve(settings: Settings) -> int:
    import wrapper.logs
    from wrapper.nuclio.session import Session, SessionSettings

    wrapper.logs.WORKER_ID = str(settings.worker_id)

    socket_path = settings.event_socket_path or settings.socket_path
    if not socket_path:
        raise SpecError("--event-socket-path: required (the processor's event socket)")
    session = Session(
        SessionSettings(
            event_socket=socket_path,
            control_socket=settings.control_socket_path,
            decode_strings=bool(settings.decode_event_strings),
            connect_attempts=max(1, settings.connect_attempts),
        )
    )
    if any(getattr(settings, name) for name in SOURCES):
        function = _from_source(settings, session)
    else:
        function = _drop_in(settings, session)
    session.connect()
    return session.run(function)


def _context(settings: Settings, session: Any, entities: Any) -> Any:
    """The context the processor's flags describe, with the door's `project` and `run`."""
    from wrapper.context import make_context

    return make_context(
        worker_id=str(settings.worker_id),
        trigger_kind=settings.trigger_kind,
        trigger_name=settings.trigger_name,
        platform_kind=settings.platform_kind,
        namespace=settings.namespace,
        on_control=session.on_control,
        reserved=entities,
    )


def _drop_in(settings: Settings, session: Any) -> Any:
    """Nuclio's way: `--handler module:func` from PYTHONPATH, its `init_context` if any."""
    from wrapper.entities.reserved import door_entities
    from wrapper.invocation import PreparedHandler
    from wrapper.loader import load_module_handler

    if not settings.handler:
        raise SpecError("--handler: required without a source (module:function on PYTHONPATH)")
    if settings.init_function:
        raise SpecError(
            "--init-function: needs a source (--code-src, --code, --base64 or --spec); "
            "without one, the handler module's init_context is used, as Nuclio does"
        )
    name = os.environ.get("NUCLIO_FUNCTION_NAME") or settings.handler.partition(":")[0]
    entities = door_entities(settings, name, "serve")
    return PreparedHandler(
        load_module_handler(settings.handler),
        _context(settings, session, entities),
        parameters=settings.parameters,
        init_parameters=settings.init_parameters,
        reserved=entities,
        debug=bool(settings.debug),
    )


def _from_source(settings: Settings, session: Any) -> Any:
    """Validate the spec, materialise the code, and load it as every door does."""
    from wrapper.config import source_settings
    from wrapper.entities.reserved import door_entities
    from wrapper.prepare import prepare_handler
    from wrapper.spec.background import validate

    pending = validate(settings)
    try:
        plan = pending.event_plan("nuclio")
    finally:
        pending.close()
    entities = door_entities(settings, plan.name, "serve", plan.project)
    return prepare_handler(
        plan,
        trigger_kind=settings.trigger_kind,
        source_settings=source_settings(settings, os.environ),
        reserved=entities,
        context=_context(settings, session, entities),
        debug=bool(settings.debug),
    )

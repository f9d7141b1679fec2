"""The `PreparedHandler`: signatures analysed once, so each call only fills a ready plan."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional

from wrapper.errors import InitError, SignatureMismatch
from wrapper.loader import LoadedCode, user_traceback
from wrapper.logs import REQUEST_ID
from wrapper.reply import (
    OCTETS,
    TEXT,
    BadResponse,
    Reply,
    collect,
    collect_async,
    error_reply,
    is_deliberate,
    to_reply,
)
from wrapper.signature import (
    NAMED,
    POSITIONAL,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    Param,
    is_async_generator_function,
    is_coroutine_function,
    parameters,
)

log = logging.getLogger("wrapper.invocation")

RESERVED = ("context", "event", "project", "run")
"""Argument names the runtime fills itself when a handler declares them."""

_EVENT = object()


class PreparedHandler:
    """A loaded handler with its call path prepared once: `respond(event)` is all a door needs."""

    def __init__(
        self,
        code: LoadedCode,
        context: Any,
        *,
        parameters: Optional[Mapping[str, Any]] = None,
        inputs: Optional[Mapping[str, Any]] = None,
        init_parameters: Optional[Mapping[str, Any]] = None,
        reserved: Optional[Mapping[str, Any]] = None,
        event_parameters: bool = False,
        debug: bool = False,
    ) -> None:
        self.name = code.handler_name
        self.context = context
        self.debug = debug
        self.handler = code.handler
        self._call = plan_call(
            code.handler, context, reserved or {}, parameters or {}, inputs or {}, event_parameters
        )
        self.is_async = is_coroutine_function(code.handler)
        self.needs_loop = (
            self.is_async
            or is_async_generator_function(code.handler)
            or (code.init is not None and is_coroutine_function(code.init))
        )
        self._init = plan_init(code.init, code.init_name, context, dict(init_parameters or {}))
        self._started = False
        self.on_failure: Optional[Callable[[], None]] = None
        """Called each time a handler call fails (a door counts it)."""

    def start(self) -> None:
        """Run the init function once (an `async def` one in a fresh event loop)."""
        try:
            result = self._init_once()
            if isinstance(result, Awaitable):
                import asyncio  # only for an async init: a sync function never loads asyncio

                asyncio.run(_awaited(result))
        except (Exception, SystemExit) as exc:  # sys.exit() in init is a failed init too
            raise _init_failed(exc) from None

    async def astart(self) -> None:
        """Run the init function once, inside the running event loop."""
        try:
            result = self._init_once()
            if isinstance(result, Awaitable):
                await result
        except (Exception, SystemExit) as exc:  # sys.exit() in init is a failed init too
            raise _init_failed(exc) from None

    def _init_once(self) -> Any:
        """Call init unless it ran already; what it returned (an awaitable for async init)."""
        if self._started or self._init is None:
            self._started = True
            return None
        self._started = True
        return self._init()

    def call(self, event: Any) -> Any:
        """Call the handler and return what it returned; exceptions propagate."""
        return self._call(event)

    def respond(self, event: Any) -> Reply:
        """Call a sync handler and convert the outcome to a Reply (errors included)."""
        token = REQUEST_ID.set(event.id)
        try:
            result = self._call(event)
            kind = type(result)  # the commonest results are converted inline
            if kind is str:
                return Reply(200, result.encode(), TEXT)
            if kind is bytes:
                return Reply(200, result, OCTETS)
            return to_reply(result)
        except (Exception, SystemExit) as exc:
            return self.fail(exc, event.id)
        finally:
            REQUEST_ID.reset(token)

    async def arespond(self, event: Any) -> Reply:
        """Call the handler (awaiting it if it is async) and convert the outcome to a Reply."""
        token = REQUEST_ID.set(event.id)
        try:
            result = self._call(event)
            if self.is_async:
                result = await result
            return to_reply(result)
        except (Exception, SystemExit) as exc:
            return self.fail(exc, event.id)
        finally:
            REQUEST_ID.reset(token)

    def respond_whole(self, event: Any) -> Reply:
        """Like `respond`, with a streamed result collected into one body."""
        reply = self.respond(event)
        return reply if reply.stream is None else self.collected(reply, event)

    def collected(self, reply: Reply, event: Any) -> Reply:
        """A streamed (sync) reply of `respond` with its chunks collected into one body."""
        try:
            return _with_body(reply, collect(reply.stream))  # type: ignore[arg-type]
        except (Exception, SystemExit) as exc:
            return self.fail(exc, event.id)

    async def arespond_whole(self, event: Any) -> Reply:
        """Like `arespond`, with a streamed result (sync or async) collected into one body."""
        reply = await self.arespond(event)
        stream: Any = reply.stream
        if stream is None:
            return reply
        try:
            whole = await collect_async(stream) if hasattr(stream, "__anext__") else collect(stream)
            return _with_body(reply, whole)
        except (Exception, SystemExit) as exc:
            return self.fail(exc, event.id)

    def fail(self, exc: BaseException, request_id: str) -> Reply:
        """The reply for a call that raised, marked failed; an unexpected error (or a
        deliberate one whose status or content type cannot be sent) is logged and counted."""
        reply = None
        if is_deliberate(exc):
            try:
                reply = error_reply(exc, request_id, self.debug)
            except BadResponse as bad:
                bad.__cause__ = exc
                exc = bad
        if reply is None:
            if self.on_failure is not None:
                self.on_failure()
            log.error(
                "handler %s failed: %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            reply = error_reply(exc, request_id, self.debug)
        reply.failed = True
        return reply


def _with_body(head: Reply, whole: Reply) -> Reply:
    """The streamed reply `head` (status, headers) with the collected body of `whole`."""
    whole.status, whole.headers, whole.typed_headers = head.status, head.headers, head.typed_headers
    whole.content_type = head.content_type or whole.content_type
    return whole


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _init_failed(exc: BaseException) -> InitError:
    return InitError(
        f"init function raised {type(exc).__name__}: {exc}", details=user_traceback(exc)
    )


def plan_call(
    handler: Callable[..., Any],
    context: Any,
    reserved: Mapping[str, Any],
    run_parameters: Mapping[str, Any],
    inputs: Mapping[str, Any],
    event_parameters: bool = False,
) -> Callable[[Any], Any]:
    """Build `call(event)` filling the handler's arguments by name, decided once, here.

    `reserved` holds the runtime's values besides the context (project, run), each read only
    when the handler names it (a door makes them on first use). With
    `event_parameters` (the job door: the run's parameters are also the event's body), a
    handler that takes only runtime-filled arguments (`handler(context, event)`, Nuclio's
    `handler(ctx, evt)`) is not given them as arguments. `event` is the only value that
    changes per call.
    """
    params = parameters(handler, "handler")
    values = {**run_parameters, **inputs}
    if event_parameters and _runtime_filled(handler, params, values):
        values = dict(inputs)
    fills: list[tuple[int, Param, Any]] = []
    missing: list[str] = []
    takes_kwargs = False
    for index, param in enumerate(params):
        if param.kind == VAR_KEYWORD:
            takes_kwargs = True
        elif param.kind == VAR_POSITIONAL:
            continue
        elif param.name == "event":
            fills.append((index, param, _EVENT))
        elif param.name == "context":
            fills.append((index, param, context))
        elif param.name in reserved:
            fills.append((index, param, reserved[param.name]))
        elif param.name in RESERVED:
            raise SignatureMismatch(
                f"handler argument {param.name!r} is not available here: it needs a store "
                "(the job door, or --store)"
            )
        elif param.name in values:
            fills.append((index, param, values[param.name]))
        elif param.required:
            missing.append(param.name)
    named = {p.name for _, p, _ in fills}
    first_is_context = not named or (named == {"context"} and params[0].name == "context")
    if missing and first_is_context and not values and _nuclio_shaped(handler):
        return functools.partial(handler, context)  # (ctx, evt), (context, events)
    if missing:
        raise SignatureMismatch(
            f"handler argument(s) {', '.join(map(repr, missing))} get no value: not one of "
            f"{', '.join(RESERVED)}, not an input and not a parameter"
            + (f" (given: {', '.join(sorted(values))})" if values else "")
        )
    rest = {k: v for k, v in values.items() if k not in named}
    if rest and not takes_kwargs:
        accepted = ", ".join(p.name for p in params) or "none"
        raise SignatureMismatch(
            f"handler does not accept {', '.join(map(repr, sorted(rest)))} "
            f"(its arguments: {accepted})"
        )
    return _caller(handler, fills, rest)


def _caller(
    handler: Callable[..., Any],
    fills: list[tuple[int, Param, Any]],
    rest: dict[str, Any],
) -> Callable[[Any], Any]:
    """The cheapest callable that passes `fills` (+ `rest` as **kwargs) and the event.

    Arguments go by position while no earlier one was skipped, then by name.
    """
    positional: list[Any] = []
    keyword = dict(rest)
    by_position = True
    for index, param, value in fills:
        by_position = by_position and param.kind in POSITIONAL and len(positional) == index
        if by_position:
            positional.append(value)
        else:
            keyword[param.name] = value
    if any(v is _EVENT for v in (*keyword.values(), *positional[:-1])):
        return _general_caller(handler, positional, keyword)
    if positional and positional[-1] is _EVENT:
        return functools.partial(handler, *positional[:-1], **keyword)
    bound = functools.partial(handler, *positional, **keyword)
    return lambda event: bound()


def _general_caller(
    handler: Callable[..., Any], positional: list[Any], keyword: dict[str, Any]
) -> Callable[[Any], Any]:
    args = tuple(positional)
    slot = next((i for i, v in enumerate(args) if v is _EVENT), None)
    name = next((k for k, v in keyword.items() if v is _EVENT), None)

    def call(event: Any) -> Any:
        call_args = args if slot is None else (*args[:slot], event, *args[slot + 1 :])
        call_kwargs = keyword if name is None else {**keyword, name: event}
        return handler(*call_args, **call_kwargs)

    return call


def _runtime_filled(
    handler: Callable[..., Any], params: list[Param], values: Mapping[str, Any]
) -> bool:
    """A handler that takes the event and otherwise only the runtime's arguments (reserved
    names, or Nuclio's two positional ones under names no value has), with no **kwargs."""
    if any(p.kind == VAR_KEYWORD for p in params):
        return False
    named = {p.name for p in params if p.kind != VAR_POSITIONAL}
    if "event" in named and named <= set(RESERVED):
        return True
    return _nuclio_shaped(handler) and not named & {*values, *RESERVED}


def _nuclio_shaped(handler: Callable[..., Any]) -> bool:
    """`def handler(ctx, evt)` with other names: called positionally as Nuclio does."""
    params = parameters(handler, "handler")
    required = [p for p in params if p.kind in POSITIONAL and p.required]
    return len(required) == 2 and all(p.kind in POSITIONAL for p in params[:2])


def plan_init(
    init: Optional[Callable[..., Any]],
    name: Optional[str],
    context: Any,
    init_parameters: dict[str, Any],
) -> Optional[Callable[[], Any]]:
    """Check `init(context, **init_parameters)` against the init's signature; return the call."""
    if init is None:
        if init_parameters:
            raise SignatureMismatch(
                f"init_parameters given ({', '.join(sorted(init_parameters))}) but the function "
                "has no init function: set init_function"
            )
        return None
    params = parameters(init, "init_function")
    takes_varargs = any(p.kind == VAR_POSITIONAL for p in params)
    if not (params and params[0].kind in POSITIONAL) and not takes_varargs:
        raise SignatureMismatch(f"init function {name!r} must take the context as first argument")
    rest = params[1:] if params and params[0].kind in POSITIONAL else params
    accepted = {p.name for p in rest if p.kind in NAMED}
    takes_kwargs = any(p.kind == VAR_KEYWORD for p in params)
    extra = [] if takes_kwargs else sorted(set(init_parameters) - accepted)
    missing = [
        p.name for p in rest if p.kind in NAMED and p.required and p.name not in init_parameters
    ]
    if extra or missing:
        problems = []
        if extra:
            problems.append(f"extra (not in its signature): {', '.join(map(repr, extra))}")
        if missing:
            problems.append(f"missing (required by it): {', '.join(map(repr, missing))}")
        raise SignatureMismatch(
            f"init function {name!r} does not match init_parameters: {'; '.join(problems)}"
        )
    return functools.partial(init, context, **init_parameters)

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
    FN_WRAPPER,
    BadResponse,
    Reply,
    Unawaited,
    collect,
    collect_async,
    for_http,
)
from wrapper.signature import (
    NAMED,
    POSITIONAL,
    POSITIONAL_ONLY,
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


class Interruption(BaseException):
    """The runtime stopping a call (serve's timeout, a job's stop signal): raised into the
    handler, it is never the handler's failure, so no door answers it as one."""


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
        self._loop: Any = None  # the loop `respond` awaits returned awaitables on, once needed
        self.on_failure: Optional[Callable[[], None]] = None
        """Called each time a handler call fails (a door counts it)."""
        self.conversion = FN_WRAPPER
        """The door's table (the nuclio door sets Nuclio's)."""
        self.hand_back_awaitables = False
        """Set by a door that awaits on its own event loop what a sync-looking handler returns:
        `respond` then raises Unawaited for it to `afinish`, rather than awaiting it itself."""

    def start(self) -> None:
        """Run the init function once (an `async def` one in a fresh event loop)."""
        try:
            result = self._init_once()
            if isinstance(result, Awaitable):
                import asyncio  # only for an async init: a sync function never loads asyncio

                asyncio.run(_awaited(result))
        except BaseException as exc:  # sys.exit() in init is a failed init too
            if isinstance(exc, Interruption):
                raise
            raise _init_failed(exc) from None

    async def astart(self) -> None:
        """Run the init function once, inside the running event loop."""
        try:
            result = self._init_once()
            if isinstance(result, Awaitable):
                await result
        except BaseException as exc:  # sys.exit() in init is a failed init too
            if stopped_by_runtime(exc, in_loop=True):
                raise
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
        """Call the handler outside an event loop and convert the outcome to a Reply (errors
        included). An awaitable it returns is awaited on a loop of this handler's own, kept
        between calls (or handed back: `hand_back_awaitables`)."""
        token = REQUEST_ID.set(event.id)
        try:
            return self.conversion.reply(self._call(event))
        except Unawaited as returned:
            if self.hand_back_awaitables:
                raise
            return self._settled(returned.awaitable, event)
        except BaseException as exc:
            if isinstance(exc, Interruption):
                raise
            return self.fail(exc, event.id)
        finally:
            REQUEST_ID.reset(token)

    def settle(self, value: Any) -> Any:
        """`value`, or what it resolves to when it is awaitable, awaited on this handler's own
        loop (for a door calling the handler outside a loop, e.g. the nuclio door's batches)."""
        if not isinstance(value, Awaitable):
            return value
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_awaited(value))

    def _settled(self, awaitable: Any, event: Any) -> Reply:
        """The reply for an awaitable the handler returned, awaited on this handler's loop."""
        try:
            return self.conversion.reply(self.settle(awaitable))
        except BaseException as exc:
            if isinstance(exc, Interruption):
                raise
            return self.fail(exc, event.id)

    async def arespond(self, event: Any) -> Reply:
        """Call the handler (awaiting it if it is async, and what it returns if that is
        awaitable) and convert the outcome to a Reply."""
        token = REQUEST_ID.set(event.id)
        try:
            result = self._call(event)
            if self.is_async:
                result = await result
            try:
                return self.conversion.reply(result)
            except Unawaited as returned:
                return self.conversion.reply(await returned.awaitable)
        except BaseException as exc:
            if stopped_by_runtime(exc, in_loop=True):
                raise
            return self.fail(exc, event.id)
        finally:
            REQUEST_ID.reset(token)

    async def afinish(self, awaitable: Any, event: Any) -> Reply:
        """The reply for an awaitable that `respond` handed back, awaited in the running loop."""
        token = REQUEST_ID.set(event.id)
        try:
            return self.conversion.reply(await awaitable)
        except BaseException as exc:
            if stopped_by_runtime(exc, in_loop=True):
                raise
            return self.fail(exc, event.id)
        finally:
            REQUEST_ID.reset(token)

    def for_http(self, reply: Reply, event: Any) -> Reply:
        """`reply` made valid HTTP/1.1 for fn-wrapper's doors (`reply.for_http`); one that
        cannot be is the handler's failure: 500 with the request id, logged and counted."""
        try:
            return for_http(reply)
        except BadResponse as exc:
            token = REQUEST_ID.set(event.id)  # the log record names the request
            try:
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
        except BaseException as exc:
            if isinstance(exc, Interruption):
                raise
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
        except BaseException as exc:
            if stopped_by_runtime(exc, in_loop=True):
                raise
            return self.fail(exc, event.id)

    def fail(self, exc: BaseException, request_id: str) -> Reply:
        """The reply for a call that raised, marked failed; an unexpected error (or a
        deliberate one whose status or content type cannot be sent) is logged and counted."""
        reply = None
        if isinstance(exc, Unawaited):  # a door that cannot await it: no "never awaited" warning
            getattr(exc.awaitable, "close", lambda: None)()
        conversion = self.conversion
        if conversion.deliberate(exc):
            try:
                reply = conversion.error(exc, request_id, self.debug)
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
            reply = conversion.error(exc, request_id, self.debug)
        reply.failed = True
        return reply


def _with_body(head: Reply, whole: Reply) -> Reply:
    """The streamed reply `head` (status, headers) with the collected body of `whole`."""
    whole.status, whole.headers, whole.typed_headers = head.status, head.headers, head.typed_headers
    whole.content_type = head.content_type or whole.content_type
    return whole


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def stopped_by_runtime(exc: BaseException, in_loop: bool = False) -> bool:
    """Whether `exc` is the runtime's own interruption of a call, not the handler failing:
    an Interruption, or (`in_loop`) a CancelledError because the loop cancelled this task
    (serve's timeout, asyncio.run on SIGINT), not one the handler raised or got from a task of
    its own. Before Python 3.11 a task does not say so: every CancelledError is the loop's."""
    if isinstance(exc, Interruption):
        return True
    if not in_loop:
        return False
    import asyncio  # loaded already: this runs in a loop

    if not isinstance(exc, asyncio.CancelledError):
        return False
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


def _init_failed(exc: BaseException) -> InitError:
    raised = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return InitError(f"init function raised {raised}", details=user_traceback(exc))


def plan_call(
    handler: Callable[..., Any],
    context: Any,
    reserved: Mapping[str, Any],
    run_parameters: Mapping[str, Any],
    inputs: Mapping[str, Any],
    event_parameters: bool = False,
) -> Callable[[Any], Any]:
    """Build `call(event)` filling the handler's arguments, decided once, here.

    By name: `context`, `event`, the `reserved` values besides the context (project, run:
    each read only when the handler names it, a door makes them on first use), then the run's
    parameters and inputs. A handler shaped as Nuclio's (`_called_as_nuclio`) gets the context
    and the event by position, as Nuclio calls it, and the rest by name. With
    `event_parameters` (the job door: the run's parameters are also the event's body), a
    handler that takes only runtime-filled arguments (`handler(context, event)`, Nuclio's
    `handler(ctx, evt)`) is not given them as arguments. `event` is the only value that
    changes per call.
    """
    params = parameters(handler, "handler")
    values = {**run_parameters, **inputs}
    if event_parameters and _runtime_filled(params, values):
        values = dict(inputs)
    as_nuclio = _called_as_nuclio(params, values)
    fills: list[tuple[int, Param, Any]] = []
    missing: list[str] = []
    takes_kwargs = False
    for index, param in enumerate(params):
        if param.kind == VAR_KEYWORD:
            takes_kwargs = True
        elif param.kind == VAR_POSITIONAL:
            if as_nuclio and index == 0:  # handler(*args, **kwargs): a plain decorator's
                fills.append((0, Param("*context", POSITIONAL_ONLY, True), context))
                fills.append((1, Param("*event", POSITIONAL_ONLY, True), _EVENT))
        elif as_nuclio and index < 2:
            fills.append((index, param, _EVENT if index else context))
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
    if missing:
        raise SignatureMismatch(
            f"handler argument(s) {', '.join(map(repr, missing))} get no value: not one of "
            f"{', '.join(RESERVED)}, not an input and not a parameter"
            + (f" (given: {', '.join(sorted(values))})" if values else "")
        )
    named = {p.name for _, p, _ in fills}
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


def _runtime_filled(params: list[Param], values: Mapping[str, Any]) -> bool:
    """A handler that takes the event and otherwise only the runtime's arguments (reserved
    names, or Nuclio's two positional ones), with no **kwargs."""
    if any(p.kind == VAR_KEYWORD for p in params):
        return False
    as_nuclio = _called_as_nuclio(params, values)
    named = {
        p.name
        for index, p in enumerate(params)
        if p.kind != VAR_POSITIONAL and not (as_nuclio and index < 2)
    }
    return (as_nuclio or "event" in named) and named <= set(RESERVED)


def _called_as_nuclio(params: list[Param], values: Mapping[str, Any]) -> bool:
    """Whether the handler is called `handler(context, event)` by position, as Nuclio calls
    it: its first two parameters are positional and its only required ones, and their names
    do not say otherwise (the first is `context` or a name nothing else fills, the second
    `event` or such a name: `(ctx, evt)`, `(ctx, event)`, `(context, events)`, not
    `(event, ctx)`); or it takes `*args` and no other positional parameter (a decorator's
    `wrapper(*args, **kwargs)`)."""
    if params and params[0].kind == VAR_POSITIONAL:
        return True
    required = [p for p in params if p.required]
    if len(required) != 2 or params[:2] != required:
        return False
    first, second = required
    if first.kind not in POSITIONAL or second.kind not in POSITIONAL:
        return False
    taken = {*RESERVED, *values}
    return (first.name == "context" or first.name not in taken) and (
        second.name == "event" or second.name not in taken
    )


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

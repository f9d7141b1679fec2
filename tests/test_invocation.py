"""The prepared PreparedHandler: argument filling, init once, sync and async calls, errors."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from typing import Any, Callable, Optional

import nuclio_sdk
import pytest

from wrapper.context import make_context
from wrapper.errors import HTTPError, InitError, SignatureMismatch
from wrapper.events import make_event
from wrapper.invocation import Interruption, PreparedHandler, is_coroutine_function
from wrapper.loader import LoadedCode
from wrapper.logs import REQUEST_ID
from wrapper.reply import Unawaited


def prepared(
    handler: Callable[..., Any],
    init: Optional[Callable[..., Any]] = None,
    **options: Any,
) -> PreparedHandler:
    code = LoadedCode(handler=handler, handler_name="handler", init=init, init_name="init")
    return PreparedHandler(code, make_context(), **options)


def event(body: bytes = b"hello", **headers: str) -> Any:
    return make_event(body, method="POST", path="/p", headers=headers)


# --- argument filling -------------------------------------------------------------------


def test_context_and_event_by_name_in_any_order() -> None:
    def handler(event, context):
        return [event.body.decode(), type(context).__name__]

    assert prepared(handler).call(event()) == ["hello", "Context"]


def test_nuclio_shaped_handler_gets_context_and_event_by_position() -> None:
    def handler(ctx, evt):
        return (type(ctx).__name__, evt.body)

    assert prepared(handler).call(event(b"x")) == ("Context", b"x")


def test_context_and_another_name_is_nuclio_shaped_too() -> None:
    def batch_handler(context, events):  # Nuclio's batch handlers are written so
        return (type(context).__name__, events)

    assert prepared(batch_handler).call([1, 2]) == ("Context", [1, 2])

    def swapped(events, context):  # the context is not first: no guessing
        return events

    with pytest.raises(SignatureMismatch, match="'events' get no value"):
        prepared(swapped)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (lambda: "none", "none"),
        (lambda event: event.body, b"hello"),
        (lambda context: context.worker_id, "0"),
        (lambda *, event: event.method, "POST"),
        (lambda context, *, event, size=3: (event.path, size), ("/p", 3)),
        (lambda context, event=None, flag=True: (event.body, flag), (b"hello", True)),
    ],
)
def test_only_the_declared_names_are_filled(handler: Callable[..., Any], expected: Any) -> None:
    assert prepared(handler).call(event()) == expected


def test_parameters_and_inputs_by_name_and_kwargs_takes_the_rest() -> None:
    def handler(event, limit, data, **kwargs):
        return limit, data, kwargs

    function = prepared(handler, parameters={"limit": 5, "mode": "fast"}, inputs={"data": "DI"})
    assert function.call(event()) == (5, "DI", {"mode": "fast"})


def test_a_parameter_placed_after_a_skipped_default_goes_by_name() -> None:
    def handler(context, scale=2, event=None, *, unit):
        return scale, event.body, unit

    assert prepared(handler, parameters={"unit": "m"}).call(event()) == (2, b"hello", "m")


def test_event_in_the_middle_of_positional_arguments() -> None:
    def handler(context, event, factor):
        return event.body * factor

    assert prepared(handler, parameters={"factor": 2}).call(event(b"ab")) == b"abab"


def test_bound_method_and_partial_handlers() -> None:
    class Model:
        def predict(self, context, event):
            return event.body.upper()

    assert prepared(Model().predict).call(event(b"m")) == b"M"
    base = functools.partial(lambda prefix, event: prefix + event.body, b">")
    assert prepared(base).call(event(b"x")) == b">x"


def test_a_parameter_the_handler_does_not_accept_is_refused_at_load() -> None:
    with pytest.raises(SignatureMismatch) as caught:
        prepared(lambda context, event: None, parameters={"limit": 1, "extra": 2})
    assert caught.value.message == (
        "handler does not accept 'extra', 'limit' (its arguments: context, event)"
    )
    assert caught.value.exit_code == 2


def test_a_required_argument_without_a_value_is_refused_at_load() -> None:
    with pytest.raises(SignatureMismatch) as caught:
        prepared(lambda event, table, limit: None, parameters={"limit": 1})
    assert caught.value.message == (
        "handler argument(s) 'table' get no value: not one of context, event, project, run, "
        "not an input and not a parameter (given: limit)"
    )


def test_project_and_run_need_a_store() -> None:
    with pytest.raises(SignatureMismatch, match="handler argument 'project' is not available here"):
        prepared(lambda project: None)
    function = prepared(lambda project, run: (project, run), reserved={"project": "P", "run": "R"})
    assert function.call(event()) == ("P", "R")


# --- async detection and calls ----------------------------------------------------------


async def _async_handler(context, event):
    await asyncio.sleep(0)
    return {"async": event.body.decode()}


class _AsyncCallable:
    async def __call__(self, context, event):
        return "called"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (_async_handler, True),
        (functools.partial(_async_handler), True),
        (_AsyncCallable(), True),
        (functools.wraps(_async_handler)(lambda *a: None), True),
        (lambda context, event: None, False),
    ],
)
def test_async_detection(handler: Callable[..., Any], expected: bool) -> None:
    assert is_coroutine_function(handler) is expected


def test_async_handler_is_awaited() -> None:
    function = prepared(_async_handler)
    reply = asyncio.run(function.arespond(event(b"a")))
    assert (reply.status, reply.body) == (200, b'{"async":"a"}')
    assert function.needs_loop


def test_sync_handler_through_arespond() -> None:
    reply = asyncio.run(prepared(lambda event: event.body).arespond(event(b"s")))
    assert (reply.body, reply.content_type) == (b"s", "application/octet-stream")


def test_generators_are_collected_by_respond_whole() -> None:
    def chunks(event):
        yield "a"
        yield "b"

    async def achunks(event):
        yield {"n": 1}
        yield {"n": 2}

    whole = prepared(chunks).respond_whole(event())
    assert (whole.body, whole.content_type) == (b"ab", "text/plain; charset=utf-8")
    function = prepared(achunks)
    assert function.needs_loop
    whole = asyncio.run(function.arespond_whole(event()))
    assert (whole.body, whole.content_type) == (b'{"n":1}\n{"n":2}\n', "application/x-ndjson")


def test_a_generator_failing_midway_answers_500() -> None:
    def chunks(event):
        yield "a"
        raise ValueError("secret")

    whole = prepared(chunks).respond_whole(event())
    assert whole.status == 500 and b"secret" not in whole.body


# --- errors -----------------------------------------------------------------------------


def test_handler_exception_is_500_without_its_text_and_logged_with_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(event):
        raise KeyError("password=hunter2")

    caplog.set_level(logging.ERROR, logger="wrapper.invocation")
    reply = prepared(handler).respond(event(**{"X-Request-Id": "req-42"}))
    assert reply.status == 500
    assert reply.body == b'{"error":"handler failed","request_id":"req-42"}'
    (record,) = caplog.records
    assert record.getMessage() == "handler handler failed: KeyError: 'password=hunter2'"
    assert record.exc_info is not None


def test_debug_puts_the_exception_in_the_body() -> None:
    def handler(event):
        raise ValueError("bad value")

    reply = prepared(handler, debug=True).respond(event())
    assert reply.status == 500
    assert b'"type":"ValueError"' in reply.body and b"bad value" in reply.body
    assert b"Traceback" in reply.body


def test_http_error_answers_its_status_and_body() -> None:
    def handler(event):
        raise HTTPError(404, {"missing": "thing"})

    reply = prepared(handler).respond(event())
    assert (reply.status, reply.body, reply.content_type) == (
        404,
        b'{"missing":"thing"}',
        "application/json",
    )


def test_system_exit_in_a_handler_does_not_stop_the_worker() -> None:
    def handler(event):
        raise SystemExit(3)

    assert prepared(handler).respond(event()).status == 500


def test_request_id_is_current_while_the_handler_runs() -> None:
    seen = []
    prepared(lambda event: seen.append(REQUEST_ID.get())).respond(event(**{"x-request-id": "abc"}))
    assert seen == ["abc"]
    assert REQUEST_ID.get() is None


# --- init -------------------------------------------------------------------------------


def test_init_is_called_once_with_context_and_parameters() -> None:
    calls = []

    def init(context, model, threshold=0.5):
        calls.append((model, threshold))
        context.user_data.model = model

    function = prepared(
        lambda context: context.user_data.model, init, init_parameters={"model": "m1"}
    )
    function.start()
    function.start()
    assert calls == [("m1", 0.5)]
    assert function.call(event()) == "m1"


def test_async_init_runs_in_start_and_astart() -> None:
    calls = []

    async def init(context):
        await asyncio.sleep(0)
        calls.append("init")

    sync_function = prepared(lambda: None, init)
    assert sync_function.needs_loop
    sync_function.start()
    asyncio.run(prepared(lambda: None, init).astart())
    assert calls == ["init", "init"]


@pytest.mark.parametrize(
    ("init", "parameters", "message"),
    [
        (
            lambda context, a: None,
            {"a": 1, "b": 2, "c": 3},
            "init function 'init' does not match init_parameters: "
            "extra (not in its signature): 'b', 'c'",
        ),
        (
            lambda context, a, b=1, *, c: None,
            {},
            "init function 'init' does not match init_parameters: "
            "missing (required by it): 'a', 'c'",
        ),
        (
            lambda context, a: None,
            {"z": 1},
            "init function 'init' does not match init_parameters: "
            "extra (not in its signature): 'z'; missing (required by it): 'a'",
        ),
        (lambda *, a: None, {"a": 1}, "init function 'init' must take the context as first"),
    ],
)
def test_init_signature_mismatch_names_extra_and_missing(
    init: Callable[..., Any], parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(SignatureMismatch) as caught:
        prepared(lambda: None, init, init_parameters=parameters)
    assert caught.value.message.startswith(message)


def test_init_with_kwargs_accepts_any_parameters() -> None:
    seen = {}
    function = prepared(
        lambda: None, lambda context, **kw: seen.update(kw), init_parameters={"x": 1}
    )
    function.start()
    assert seen == {"x": 1}


def test_init_parameters_without_an_init_function_are_refused() -> None:
    with pytest.raises(
        SignatureMismatch, match=r"init_parameters given \(a\) but the function has"
    ):
        prepared(lambda: None, init_parameters={"a": 1})


def test_init_failure_is_an_init_error_with_the_traceback() -> None:
    def init(context):
        raise ConnectionError("database down")

    function = prepared(lambda: None, init)
    with pytest.raises(InitError) as caught:
        function.start()
    assert caught.value.message == "init function raised ConnectionError: database down"
    assert caught.value.exit_code == 4
    assert "database down" in (caught.value.details or "")


@pytest.mark.parametrize("code", [0, 1])
def test_sys_exit_in_init_is_an_init_error(code: int) -> None:
    def init(context):
        raise SystemExit(code)

    for start in (prepared(lambda: None, init).start, lambda: asyncio.run(_astart(init))):
        with pytest.raises(InitError, match=f"^init function raised SystemExit: {code}$"):
            start()


async def _astart(init: Callable[..., Any]) -> None:
    await prepared(lambda: None, init).astart()


@pytest.mark.parametrize(
    ("exc", "field"),
    [
        (nuclio_sdk.ExceptionWithResponse("418x", "x"), "ExceptionWithResponse.status_code"),
        (nuclio_sdk.ExceptionWithResponse(418, "x", 5), "ExceptionWithResponse.content_type"),
        (HTTPError(99, "x"), "HTTPError.status"),
    ],
)
def test_a_deliberate_error_that_cannot_be_sent_is_a_500_naming_the_field(
    caplog: pytest.LogCaptureFixture, exc: BaseException, field: str
) -> None:
    def handler(context, event):
        raise exc

    caplog.set_level(logging.ERROR, logger="wrapper.invocation")
    reply = prepared(handler).respond(event())
    assert (reply.status, reply.failed) == (500, True)
    (record,) = caplog.records
    assert f"BadResponse: {field}: " in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1].__cause__ is exc


def test_replies_to_raised_calls_are_marked_failed() -> None:
    def handler(context, event):
        if event.body == b"teapot":
            raise HTTPError(418, "teapot")
        return "fine"

    function = prepared(handler)
    assert function.respond(event(b"teapot")).failed
    assert not function.respond(event(b"other")).failed


def test_context_logger_speaks_nuclio_and_stdlib(caplog: pytest.LogCaptureFixture) -> None:
    def handler(context, event):
        context.logger.info_with("structured", user="ada")
        context.logger.warn("nuclio spelling")
        context.logger.warning("stdlib spelling %s", 1)

    caplog.set_level(logging.DEBUG, logger="function")
    prepared(handler).respond(event())
    assert [r.getMessage() for r in caplog.records] == [
        "structured",
        "nuclio spelling",
        "stdlib spelling 1",
    ]
    assert caplog.records[0].__dict__["with"] == {"user": "ada"}


# --- Nuclio's positional call ------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "def handler(ctx, event): return (ctx, event)",
        "def handler(c, e): return (c, e)",
        "def handler(context, evt): return (context, evt)",
        "def handler(context, event): return (context, event)",
        "def handler(ctx, event, /): return (ctx, event)",
        "def handler(ctx, event, flag=True): return (ctx, event)",
        "def handler(*args, **kwargs): return args",
        "def handler(*args): return args",
    ],
)
def test_two_required_positional_parameters_get_context_and_event_by_position(
    source: str,
) -> None:
    """Nuclio calls `handler(context, event)` by position, whatever the names."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the handler under test, written as a user would
    function = prepared(namespace["handler"])
    given = event(b"x")
    context, passed = function.call(given)
    assert passed is given and context is function.context


def test_by_position_and_the_rest_by_name() -> None:
    def handler(ctx, evt, limit=1, **rest):
        return evt.body, limit, rest

    function = prepared(handler, parameters={"limit": 5, "mode": "fast"})
    assert function.call(event(b"x")) == (b"x", 5, {"mode": "fast"})


def test_names_that_say_otherwise_are_not_taken_by_position() -> None:
    with pytest.raises(SignatureMismatch, match="'ctx' get no value"):
        prepared(lambda event, ctx: None)  # the event is not first
    with pytest.raises(SignatureMismatch, match="'ctx' get no value"):
        prepared(lambda ctx, limit: None, parameters={"limit": 1})  # a run value's name
    with pytest.raises(SignatureMismatch, match="'table' get no value"):
        prepared(lambda ctx, evt, table: None)  # three required
    function = prepared(lambda context, limit: limit, parameters={"limit": 7})
    assert function.call(event()) == 7  # by name: the parameter, not the event


def test_run_values_a_positional_handler_does_not_take_are_refused() -> None:
    with pytest.raises(SignatureMismatch) as caught:
        prepared(lambda ctx, event: None, parameters={"speed": 3})
    assert caught.value.message == "handler does not accept 'speed' (its arguments: ctx, event)"


def test_in_a_job_a_positional_handler_gets_the_parameters_in_the_event() -> None:
    function = prepared(
        lambda ctx, event: event.body, parameters={"speed": 3}, event_parameters=True
    )
    assert function.call(event(b'{"speed": 3}')) == b'{"speed": 3}'


# --- what a handler returns that is awaitable ----------------------------------------------


def _decorated(coroutine_function: Callable[..., Any]) -> Callable[..., Any]:
    """A plain decorator: no functools.wraps, so the handler looks sync."""

    def wrapper(*args, **kwargs):
        return coroutine_function(*args, **kwargs)

    return wrapper


@_decorated
async def _behind_a_decorator(context, event):
    await asyncio.sleep(0)
    if event.body == b"raise":
        raise KeyboardInterrupt
    loops = getattr(context.user_data, "loops", [])
    context.user_data.loops = [*loops, id(asyncio.get_running_loop())]
    return {"awaited": event.body.decode(), "request": REQUEST_ID.get()}


def test_respond_awaits_what_a_sync_looking_handler_returns_on_one_loop() -> None:
    function = prepared(_behind_a_decorator)
    assert not function.needs_loop
    first = function.respond(event(b"a", **{"X-Request-Id": "r-1"}))
    second = function.respond(event(b"b"))
    assert (first.status, first.body) == (200, b'{"awaited":"a","request":"r-1"}')
    assert second.body.startswith(b'{"awaited":"b"')
    loops = function.context.user_data.loops
    assert len(loops) == 2 and loops[0] == loops[1]  # loop-bound objects live on between calls
    failed = function.respond(event(b"raise"))
    assert (failed.status, failed.failed) == (500, True)


def test_arespond_awaits_what_any_handler_returns() -> None:
    async def later(event):
        await asyncio.sleep(0)
        return event.body

    def sync_looking(event):
        return later(event)

    async def async_returning(event):
        return later(event)

    for handler in (sync_looking, async_returning):
        reply = asyncio.run(prepared(handler).arespond(event(b"z")))
        assert (reply.status, reply.body) == (200, b"z")


def test_a_door_with_its_own_loop_gets_the_awaitable_handed_back() -> None:
    function = prepared(_behind_a_decorator)
    function.hand_back_awaitables = True
    given = event(b"h", **{"X-Request-Id": "r-h"})
    with pytest.raises(Unawaited) as caught:
        function.respond(given)
    reply = asyncio.run(function.afinish(caught.value.awaitable, given))
    assert reply.body == b'{"awaited":"h","request":"r-h"}'


def test_an_awaitable_a_door_cannot_await_is_a_failure_without_a_warning(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    async def later():
        return 1

    function = prepared(lambda: None)
    caplog.set_level(logging.ERROR, logger="wrapper.invocation")
    reply = function.fail(Unawaited(later()), "r")
    assert (reply.status, reply.failed) == (500, True)
    assert "returned a coroutine that was not awaited" in caplog.records[0].getMessage()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


# --- every exception is the handler's failure, but the runtime's own ------------------------


class _Own(BaseException):
    pass


@pytest.mark.parametrize(
    "raised", [KeyboardInterrupt(), SystemExit(0), GeneratorExit(), _Own("mine"), ValueError()]
)
def test_any_base_exception_is_a_counted_500(raised: BaseException) -> None:
    def handler(event):
        raise raised

    async def ahandler(event):
        raise raised

    failures: list[int] = []
    for function, respond in (
        (prepared(handler), lambda f, e: f.respond(e)),
        (prepared(ahandler), lambda f, e: asyncio.run(f.arespond(e))),
    ):
        function.on_failure = lambda: failures.append(1)
        reply = respond(function, event(**{"X-Request-Id": "r-base"}))
        assert (reply.status, reply.failed) == (500, True)
        assert reply.body == b'{"error":"handler failed","request_id":"r-base"}'
    assert len(failures) == 2  # each counted


def test_a_generator_raising_a_base_exception_is_a_500() -> None:
    def chunks(event):
        yield "a"
        raise _Own("late")

    assert prepared(chunks).respond_whole(event()).status == 500


def test_the_runtimes_interruption_goes_through() -> None:
    class TimedOut(Interruption):
        pass

    def handler(event):
        raise TimedOut

    with pytest.raises(TimedOut):
        prepared(handler).respond(event())
    with pytest.raises(TimedOut):
        asyncio.run(prepared(handler).arespond(event()))
    with pytest.raises(TimedOut):
        prepared(lambda: None, lambda context: handler(None)).start()


def test_a_cancelled_error_of_the_handlers_own_is_its_failure() -> None:
    async def handler(event):
        task = asyncio.ensure_future(asyncio.sleep(10))
        task.cancel()
        await task  # CancelledError, not this call's

    if sys.version_info < (3, 11):  # a task cannot tell who cancelled it: the loop, taken
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(prepared(handler).arespond(event()))
        return
    reply = asyncio.run(prepared(handler).arespond(event()))
    assert (reply.status, reply.failed) == (500, True)


def test_the_loop_cancelling_the_call_goes_through() -> None:
    async def handler(event):
        await asyncio.sleep(10)

    async def call() -> None:
        await asyncio.wait_for(prepared(handler).arespond(event()), 0.01)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(call())


def test_a_base_exception_in_init_is_an_init_error() -> None:
    def init(context):
        raise _Own()

    with pytest.raises(InitError, match=r"^init function raised _Own$"):
        prepared(lambda: None, init).start()
    with pytest.raises(InitError, match=r"^init function raised KeyboardInterrupt$"):
        asyncio.run(_astart(lambda context: (_ for _ in ()).throw(KeyboardInterrupt)))


# --- fn-wrapper's HTTP rules, as the core applies them -----------------------------------


def test_a_reply_no_http_reply_can_carry_is_a_logged_counted_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    function = prepared(lambda event: (101, "switching"))
    failures = []
    function.on_failure = lambda: failures.append(1)
    given = event(**{"X-Request-Id": "r-101"})
    caplog.set_level(logging.ERROR, logger="wrapper.invocation")
    logged_for = []
    caplog.handler.addFilter(lambda record: logged_for.append(REQUEST_ID.get()) or True)
    reply = function.for_http(function.respond(given), given)
    assert (reply.status, reply.failed, len(failures)) == (500, True, 1)
    assert reply.body == b'{"error":"handler failed","request_id":"r-101"}'
    (record,) = caplog.records
    assert "BadResponse: status 101: a reply's status is from 200 to 599" in record.getMessage()
    assert logged_for == ["r-101"] and REQUEST_ID.get() is None  # the log line names the request

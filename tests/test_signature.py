"""Parameters read from code objects agree with inspect.signature, for every shape of def."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import pytest

from wrapper.errors import SignatureMismatch
from wrapper.signature import (
    Param,
    is_async_generator_function,
    is_coroutine_function,
    parameters,
)

SHAPES = [
    "def f(): pass",
    "def f(context, event): pass",
    "def f(a, b=1, *args, c, d=2, **kwargs): pass",
    "def f(a, /, b, *, c): pass",
    "def f(a, b=1, /, c=2): pass",
    "def f(*args): pass",
    "def f(**kwargs): pass",
    "def f(*, only): pass",
    "def f(a, *, b=1, **rest): x = 1; y = 2",  # locals after the parameters
    "async def f(context, event): pass",
    "async def f(event):\n    yield event",
    "def f(event):\n    yield event",
]


def defined(source: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace["f"]  # type: ignore[no-any-return]


def from_inspect(func: Callable[..., Any]) -> list[Param]:
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        Param(p.name, int(p.kind), p.default is p.empty and p.kind not in variadic)
        for p in inspect.signature(func).parameters.values()
    ]


@pytest.mark.parametrize("source", SHAPES)
def test_plain_functions_match_inspect(source: str) -> None:
    func = defined(source)
    assert parameters(func, "handler") == from_inspect(func)
    assert is_coroutine_function(func) == inspect.iscoroutinefunction(func)
    assert is_async_generator_function(func) == inspect.isasyncgenfunction(func)


def test_wrapped_and_other_callables_go_through_inspect() -> None:
    async def inner(context: Any, event: Any, extra: int = 0) -> None:
        """Only its signature matters here."""

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs)

    class Handler:
        async def __call__(self, event: Any) -> None:
            """Only its signature matters here."""

    assert [p.name for p in parameters(wrapper, "handler")] == ["context", "event", "extra"]
    assert is_coroutine_function(wrapper)
    assert is_coroutine_function(functools.partial(inner, None))
    assert is_coroutine_function(Handler())
    assert [p.name for p in parameters(Handler(), "handler")] == ["event"]


def test_an_unreadable_signature_names_the_field() -> None:
    with pytest.raises(SignatureMismatch, match="init_function: cannot read the signature"):
        parameters(min, "init_function")

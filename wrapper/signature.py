"""A callable's parameters, read from its code object when it is a plain function.

`inspect` (with the ast, dis and tokenize modules it loads) costs ~5 ms of start-up; a plain
`def` handler, the usual case, needs none of it. Anything else (a wrapped function, a class,
a partial, a builtin) goes through `inspect.signature`, the reference this module agrees with.
"""

from __future__ import annotations

import functools
from types import FunctionType
from typing import Any, Callable, NamedTuple

from wrapper.errors import SignatureMismatch

POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = range(5)
"""Parameter kinds, numbered as `inspect.Parameter`'s."""

POSITIONAL = (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)
NAMED = (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)

_VARARGS, _VARKEYWORDS, _COROUTINE, _ASYNC_GENERATOR = 0x04, 0x08, 0x80, 0x200
"""Code object flags (`inspect.CO_*`)."""


class Param(NamedTuple):
    name: str
    kind: int
    required: bool
    """No default value (always False for *args and **kwargs)."""


def parameters(func: Callable[..., Any], field_name: str) -> list[Param]:
    """The parameters of `func` in order; a SignatureMismatch naming `field_name` when
    they cannot be read (e.g. some builtins)."""
    if _plain(func):
        return _from_code(func)  # type: ignore[arg-type]
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise SignatureMismatch(
            f"{field_name}: cannot read the signature of {func!r}: {exc}"
        ) from None
    variadic = (VAR_POSITIONAL, VAR_KEYWORD)
    return [
        Param(p.name, int(p.kind), p.default is p.empty and p.kind not in variadic)
        for p in signature.parameters.values()
    ]


def is_coroutine_function(func: Callable[..., Any]) -> bool:
    """True for `async def` functions, bound methods, partials and objects with async __call__."""
    if _plain(func):
        return bool(func.__code__.co_flags & _COROUTINE)
    import inspect

    target = inspect.unwrap(func)
    while isinstance(target, functools.partial):
        target = target.func
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an object with `async def __call__`
    )


def is_async_generator_function(func: Callable[..., Any]) -> bool:
    """True for `async def` functions that yield (after unwrapping decorators)."""
    if _plain(func):
        return bool(func.__code__.co_flags & _ASYNC_GENERATOR)
    import inspect

    return inspect.isasyncgenfunction(inspect.unwrap(func))


def _plain(func: Any) -> bool:
    """A function whose code object tells all: not wrapped, no signature or marker set on it."""
    return type(func) is FunctionType and not (
        hasattr(func, "__wrapped__")
        or hasattr(func, "__signature__")
        or hasattr(func, "_is_coroutine_marker")  # inspect.markcoroutinefunction (3.12+)
    )


def _from_code(func: FunctionType) -> list[Param]:
    code = func.__code__
    names = code.co_varnames
    count, keyword_only = code.co_argcount, code.co_kwonlyargcount
    first_default = count - len(func.__defaults__ or ())
    params = [
        Param(
            names[i],
            POSITIONAL_ONLY if i < code.co_posonlyargcount else POSITIONAL_OR_KEYWORD,
            i < first_default,
        )
        for i in range(count)
    ]
    rest = count + keyword_only  # *args, then **kwargs, follow the keyword-only names
    if code.co_flags & _VARARGS:
        params.append(Param(names[rest], VAR_POSITIONAL, False))
        rest += 1
    defaults = func.__kwdefaults__ or {}
    for name in names[count : count + keyword_only]:
        params.append(Param(name, KEYWORD_ONLY, name not in defaults))
    if code.co_flags & _VARKEYWORDS:
        params.append(Param(names[rest], VAR_KEYWORD, False))
    return params

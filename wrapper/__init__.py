"""fn-wrapper: run a user's Python function behind HTTP, the Nuclio processor, or as a job.

Importing this package is cheap on purpose: heavy modules (pydantic, nuclio_sdk, yaml, ...)
are imported only by the parts that need them.
"""

from __future__ import annotations

from typing import Any

from wrapper.errors import HTTPError

__version__ = "0.1.0"

__all__ = ["HTTPError", "__version__", "handler"]


def __getattr__(name: str) -> Any:
    """`wrapper.handler` (the job door's outputs declaration), imported on first use."""
    if name == "handler":
        from wrapper.job.outputs import handler

        return handler
    raise AttributeError(f"module 'wrapper' has no attribute {name!r}")

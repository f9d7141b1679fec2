"""fn-wrapper: run a user's Python function behind HTTP, the Nuclio processor, or as a job.

Importing this package is cheap on purpose: heavy modules (pydantic, nuclio_sdk, yaml, ...)
are imported only by the parts that need them.
"""

from __future__ import annotations

from typing import Any

from wrapper.errors import HTTPError

__version__ = "0.1.0"

API = ("get_or_create_project", "get_project", "new_function", "get_function")
"""The Python API (wrapper.api.projects), as DigitalHub's SDK names it: `import wrapper as dh`."""

__all__ = ["HTTPError", "__version__", "handler", *API]


def __getattr__(name: str) -> Any:
    """`wrapper.handler` (the job door's outputs declaration) and the Python API, imported on
    first use (the doors import this package: it stays cheap)."""
    if name == "handler":
        from wrapper.job.outputs import handler

        return handler
    if name in API:
        from wrapper.api import projects

        return getattr(projects, name)
    raise AttributeError(f"module 'wrapper' has no attribute {name!r}")

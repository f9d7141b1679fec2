"""fn-wrapper: run a user's Python function behind HTTP, the Nuclio processor, or as a job.

Importing this package is cheap on purpose: heavy modules (pydantic, nuclio_sdk, yaml, ...)
are imported only by the parts that need them.
"""

from __future__ import annotations

from wrapper.errors import HTTPError

__version__ = "0.1.0"

__all__ = ["HTTPError", "__version__"]

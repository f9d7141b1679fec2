"""The KFP tests need the real `kfp` SDK (a test extra from Python 3.10: on 3.9 kfp pins
urllib3 2 while botocore needs urllib3 1.26, so the two cannot be installed together)."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest


def require_kfp() -> ModuleType:
    """The kfp package; a skip on 3.9 only (anywhere else a missing kfp is a failure)."""
    if sys.version_info < (3, 10):
        pytest.skip("kfp cannot be installed beside botocore on Python 3.9 (urllib3 pins)")
    import kfp

    return kfp

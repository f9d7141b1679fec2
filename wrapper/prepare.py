"""From a validated run document to a loaded, prepared `Function`: the path every door takes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from wrapper.context import make_context
from wrapper.invocation import Function
from wrapper.loader import load_code
from wrapper.sources import SourceTree, materialise_source

if TYPE_CHECKING:
    from wrapper.sources.settings import SourceSettings

log = logging.getLogger("wrapper.prepare")


def prepare_function(
    document: Any,
    *,
    trigger_kind: str,
    source_settings: Optional[SourceSettings] = None,
    tree: Optional[SourceTree] = None,
    inputs: Optional[Mapping[str, Any]] = None,
    reserved: Optional[Mapping[str, Any]] = None,
    debug: bool = False,
) -> Function:
    """Materialise the source (unless `tree` is the materialised one), import the handler,
    and prepare its calls (init not yet run)."""
    function = document.function
    wanted = function.python_version
    if wanted.version != "{}.{}".format(*sys.version_info[:2]):
        log.warning(
            "function %s asks for Python %s; running on %s.%s",
            function.name,
            wanted.version,
            *sys.version_info[:2],
        )
    tree = tree or materialise_source(function.source, source_settings)
    code = load_code(tree, function.source.handler, function.source.init_function)
    return Function(
        code,
        make_context(trigger_kind=trigger_kind),
        parameters=document.run.parameters,
        inputs=inputs,
        init_parameters=document.run.init_parameters,
        reserved=reserved,
        debug=debug,
    )

"""From a function plan to a loaded `PreparedHandler`: the path every door takes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from wrapper.context import make_context
from wrapper.invocation import PreparedHandler
from wrapper.loader import load_code
from wrapper.plan import FunctionPlan
from wrapper.sources import SourceTree, materialise_source

if TYPE_CHECKING:
    from wrapper.sources.settings import SourceSettings

log = logging.getLogger("wrapper.prepare")


def prepare_handler(
    plan: FunctionPlan,
    *,
    trigger_kind: str,
    source_settings: Optional[SourceSettings] = None,
    tree: Optional[SourceTree] = None,
    inputs: Optional[Mapping[str, Any]] = None,
    reserved: Optional[Mapping[str, Any]] = None,
    context: Any = None,
    debug: bool = False,
) -> PreparedHandler:
    """Materialise the source (unless `tree` is the materialised one), import the handler,
    and prepare its calls (init not yet run) with `context` (default: a new one)."""
    running = "{}.{}".format(*sys.version_info[:2])
    if plan.python != running:
        log.warning(
            "function %s asks for Python %s; running on %s", plan.name, plan.python, running
        )
    for name, value in plan.envs.items():
        os.environ.setdefault(name, value)
    tree = tree or materialise_source(plan, source_settings)
    code = load_code(tree, plan.handler, plan.init_function)
    return PreparedHandler(
        code,
        context or make_context(trigger_kind=trigger_kind),
        parameters=plan.parameters,
        inputs=inputs,
        init_parameters=plan.init_parameters,
        reserved=reserved,
        event_parameters=trigger_kind == "job",
        debug=debug,
    )

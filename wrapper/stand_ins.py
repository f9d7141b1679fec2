"""Stand-ins for DigitalHub's packages inside fn-wrapper's doors (DESIGN §5), and for kfp's
`dsl.component` where kfp is not installed.

A function written for the DigitalHub python runtime imports `handler` from
`digitalhub_runtime_python`, and may `import digitalhub` or import its entity classes for type
hints. Once `install()` has run (the loader runs it before it imports user code), those
imports, and those of any of their submodules, give fn-wrapper's own objects, whether or not
a DigitalHub package is installed: the real packages are never imported by a door.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Optional

RUNTIME, SDK = "digitalhub_runtime_python", "digitalhub"
STAND_INS = (RUNTIME, SDK)
PACKAGES = {
    RUNTIME: ("entities", "runtimes", "utils"),
    SDK: ("context", "entities", "factory", "runtimes", "stores", "utils"),
}
"""The subpackages of each (0.15's): their modules are stood in for too, so that any import
path of an entity class works; another name is no module (`from digitalhub import x`)."""

_OBJECTS, _PROJECT, _RUN = (
    "wrapper.entities.objects",
    "wrapper.entities.project",
    "wrapper.entities.run",
)
CLASSES = {
    **dict.fromkeys(
        ("Dataitem", "DataitemTable", "DataitemCroissant", "DataitemDataitem"),
        (_OBJECTS, "DataItem"),
    ),
    **dict.fromkeys(("Artifact", "ArtifactArtifact"), (_OBJECTS, "Artifact")),
    **dict.fromkeys(
        ("Model", "ModelModel", "ModelSklearn", "ModelMlflow", "ModelHuggingface"),
        (_OBJECTS, "Model"),
    ),
    "Project": (_PROJECT, "Project"),
    **dict.fromkeys(
        ("Run", "RunBaseRun", "RunPythonRunJob", "RunPythonRunServe", "RunPythonRunBuild"),
        (_RUN, "Run"),
    ),
}
"""DigitalHub's entity classes (0.15's names, whichever module they are imported from), with
fn-wrapper's class for each: for type hints and isinstance checks."""

OFFERS = {
    RUNTIME: "it offers `handler` (the outputs declaration) and the entity classes",
    SDK: (
        "it offers the entity classes for type hints (Dataitem…, Artifact…, Model…, Project, "
        "Run…); for the rest, take the handler's `project` argument (or context.project): "
        "project.get_dataitem(…), project.log_model(…), … (see docs/digitalhub.md)"
    ),
}


def install() -> None:
    """Serve the stand-ins for every later import (once per process)."""
    if not any(isinstance(finder, _StandInFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder())
    if not any(isinstance(finder, _KfpFinder) for finder in sys.meta_path):
        sys.meta_path.append(_KfpFinder())  # last: an installed kfp is found first
    for name in [n for n in sys.modules if n.partition(".")[0] in STAND_INS]:
        if not getattr(sys.modules[name], "__fn_wrapper_stand_in__", False):
            del sys.modules[name]  # a real package imported before: not for user code


def hint(module: Optional[str]) -> str:
    """What a stand-in offers, for an import error naming `module` ('' for other modules)."""
    top = (module or "").partition(".")[0]
    if top not in STAND_INS:
        return ""
    return f" (fn-wrapper stands in for {top} inside its doors: {OFFERS[top]})"


class _StandInFinder:
    """Finds every module under the stand-in names, before any installed package."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        top, *below = fullname.split(".")
        if top not in STAND_INS or (below and below[0] not in PACKAGES[top]):
            return None
        loader: Any = _StandInLoader()  # a Loader by its methods (importlib.abc takes 8 ms)
        return ModuleSpec(fullname, loader, is_package=True)


class _StandInLoader:
    """Makes a stand-in module: its names are looked up when they are imported."""

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module

    def exec_module(self, module: ModuleType) -> None:
        top = module.__name__.partition(".")[0]
        module.__fn_wrapper_stand_in__ = True  # type: ignore[attr-defined]
        module.__doc__ = f"fn-wrapper's stand-in for {top}: {OFFERS[top]}."
        module.__getattr__ = lambda name: _attribute(top, module.__name__, name)  # type: ignore[method-assign]


def _attribute(top: str, module: str, name: str) -> Any:
    """One name of a stand-in module, or an AttributeError saying what it offers."""
    if top == RUNTIME and name == "handler":
        from wrapper.job.outputs import handler

        return handler
    if name in CLASSES:
        home, attribute = CLASSES[name]
        return getattr(importlib.import_module(home), attribute)
    raise AttributeError(f"module {module!r} has no attribute {name!r}{hint(module)}")


KFP_OFFERS = (
    "kfp is not installed here; fn-wrapper stands in for its `dsl.component` decorator only"
    " (the function runs as it is): install kfp for the rest"
)


class _KfpFinder:
    """Finds `kfp` and `kfp.dsl` when no installed kfp was found (it comes last on the meta
    path): a KFP component's module (`from kfp import dsl`, `@dsl.component(...)`) then
    imports in an image without kfp, whose dependencies pip can only build from sources."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        if fullname not in ("kfp", "kfp.dsl"):
            return None
        loader: Any = _KfpLoader()
        return ModuleSpec(fullname, loader, is_package=True)


class _KfpLoader:
    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__fn_wrapper_stand_in__ = True  # type: ignore[attr-defined]
        module.__doc__ = f"fn-wrapper's stand-in: {KFP_OFFERS}."
        if module.__name__ == "kfp.dsl":
            module.component = _component  # type: ignore[attr-defined]
        module.__getattr__ = lambda name: _kfp_attribute(module.__name__, name)  # type: ignore[method-assign]


def _kfp_attribute(module: str, name: str) -> Any:
    if module == "kfp" and name == "dsl":
        return importlib.import_module("kfp.dsl")
    raise AttributeError(f"module {module!r} has no attribute {name!r} ({KFP_OFFERS})")


def _component(func: Any = None, **options: Any) -> Any:
    """`@dsl.component` and `@dsl.component(base_image=…, …)`: the function itself."""
    return func if func is not None else (lambda decorated: decorated)

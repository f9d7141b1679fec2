"""`get_or_create_project`, `get_project` and the module-level `new_function` /
`get_function` of DigitalHub's SDK, on the store the CLI uses (DESIGN §11)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

from wrapper.errors import SpecError

if TYPE_CHECKING:
    from wrapper.api.functions import Function
    from wrapper.entities.project import Project


def get_or_create_project(name: str, store: Optional[str] = None) -> Project:
    """The project `name` on `store` (else `FN_WRAPPER_STORE`, else the default store, as
    every door has it), opened on first use."""
    from wrapper.entities.project import Project
    from wrapper.entities.reserved import LazyStore
    from wrapper.settings import STORE_OPTIONS, resolve

    given = {"store": store} if store is not None else {}
    settings = resolve(given, STORE_OPTIONS, os.environ)
    return Project(name, LazyStore(settings.store))


def get_project(name: str, store: Optional[str] = None) -> Project:
    """The project `name`, which must hold something already (an entity, a function or a
    run): a store keeps no empty projects."""
    from wrapper.entities.store import EntityNotFound

    project = get_or_create_project(name, store)
    if not project.store.versions(name) and not project.store.runs(name):
        raise EntityNotFound(
            f"get_project({name!r}): the store {project.store.uri} holds nothing of project "
            f"{name!r}; get_or_create_project({name!r}) starts one"
        )
    return project


def new_function(project: str, name: str, kind: str = "python", **fields: Any) -> Function:
    """`project.new_function(...)` on the project named `project`."""
    return _project(project, "new_function", fields).new_function(name, kind, **fields)


def get_function(name: str, project: str, entity_id: Optional[str] = None, **kw: Any) -> Function:
    """`project.get_function(...)` on the project named `project`."""
    return _project(project, "get_function", kw).get_function(name, entity_id)


def _project(name: Any, call: str, rest: dict[str, Any]) -> Project:
    if not isinstance(name, str) or not name:
        raise SpecError(f"{call}(project=…): name the project the function belongs to")
    return get_or_create_project(name, rest.pop("store", None))

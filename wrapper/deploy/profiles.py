"""Task profiles: named overlays of task fields an operator keeps in a folder (`<name>.yaml` or
`<name>.json`), merged under the task's own fields (DESIGN §2: `task.profile`).

A field the task sets wins (0 and false too); a field it leaves unset (absent, null or an empty
list) takes the profile's (resources per resource: cpu, mem, gpu, disk, each in either of its
forms); the result is validated again, so a bad profile is named like a bad task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from wrapper.entities.keys import is_name
from wrapper.errors import SpecError


def apply_profile(task: dict[str, Any], folder: Optional[Path]) -> dict[str, Any]:
    """The task with its profile merged under it (the task as it is without a profile)."""
    name = task.get("profile")
    if not name:
        return task
    if folder is None:
        raise SpecError(f"task.profile {name!r}: no profiles folder (--profiles DIR)")
    if not is_name(name):
        raise SpecError(f"task.profile {name!r} is not a profile name")
    path, profile = _read(folder, name)
    merged = dict(task)
    for field, value in profile.items():
        if field == "resources":
            if not isinstance(value, dict):
                raise SpecError(
                    f"task.profile {name!r}: {path}: resources: {value!r} is not a mapping of"
                    " cpu, mem, gpu and disk"
                )
            own = dict(task.get("resources") or {})
            merged["resources"] = {**value, **{k: v for k, v in own.items() if v is not None}}
        elif field != "profile" and task.get(field) in (None, [], {}):
            merged[field] = value
    from pydantic import ValidationError

    from wrapper.spec.models import TaskSpec

    try:
        return TaskSpec.model_validate(merged).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SpecError(f"task.profile {name!r}: {where}: {first['msg']}") from None


def _read(folder: Path, name: str) -> tuple[Path, dict[str, Any]]:
    for suffix in (".yaml", ".yml", ".json"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            import yaml

            try:
                data = (json.loads if suffix == ".json" else yaml.safe_load)(path.read_text())
            except (ValueError, yaml.YAMLError) as exc:
                reason = " ".join(str(exc).split())
                raise SpecError(f"task.profile {name!r}: {path} is not valid: {reason}") from None
            if not isinstance(data, dict):
                raise SpecError(f"task.profile {name!r}: {path} is not a mapping of task fields")
            return path, data
    raise SpecError(f"task.profile {name!r}: no {name}.yaml or {name}.json in {folder}")

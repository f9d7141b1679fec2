"""What the core needs from a validated run document to load and call one function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class FunctionPlan:
    """The function's identity, source and call arguments, from a validated document.

    Plain data (no pydantic): a door can get it from a validation done in another process.
    It has the `code_src` / `code` / `base64` fields `materialise_source` reads.
    """

    name: str
    python_version: str
    handler: str
    code_src: Optional[str] = None
    code: Optional[str] = None
    base64: Optional[str] = None
    init_function: Optional[str] = None
    parameters: dict[str, Any] = field(default_factory=dict)
    init_parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    project: Optional[str] = None
    """The function's own project (a library function's), below --project and its twin."""
    envs: dict[str, str] = field(default_factory=dict)
    """task.envs with a value, set for the function unless the environment has them."""

    @classmethod
    def from_dump(cls, document: dict[str, Any]) -> FunctionPlan:
        """From `RunDocument.model_dump(mode="json")`."""
        function, source, run = (
            document["function"],
            document["function"]["source"],
            document["run"],
        )
        return cls(
            name=function["name"],
            python_version=function["python_version"],
            handler=source["handler"],
            code_src=source["code_src"],
            code=source["code"],
            base64=source["base64"],
            init_function=source["init_function"],
            parameters=run["parameters"],
            init_parameters=run["init_parameters"],
            inputs=run["inputs"],
            project=function.get("project"),
            envs={
                e["name"]: e["value"]
                for e in document["task"]["envs"]
                if e.get("value") is not None
            },
        )

    @property
    def python(self) -> str:
        """The version asked for, dotted: `PYTHON3_11` → `3.11`."""
        return self.python_version.removeprefix("PYTHON").replace("_", ".")

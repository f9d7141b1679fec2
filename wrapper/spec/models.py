"""Pydantic models of the function, task and run specs (DigitalHub field names, DESIGN §2)."""

from __future__ import annotations

import enum
import posixpath
import re
import sys
import uuid
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Annotated, Any, Literal, Optional

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class PythonVersion(str, enum.Enum):
    """Python versions a function may ask for; the version picks the image at build time."""

    PYTHON3_9 = "PYTHON3_9"
    PYTHON3_10 = "PYTHON3_10"
    PYTHON3_11 = "PYTHON3_11"
    PYTHON3_12 = "PYTHON3_12"
    PYTHON3_13 = "PYTHON3_13"

    @classmethod
    def running(cls) -> Optional[PythonVersion]:
        """The member naming this interpreter's version, if it is a supported one."""
        name = "PYTHON{}_{}".format(*sys.version_info[:2])
        return cls.__members__.get(name)

    @property
    def version(self) -> str:
        """The dotted version, e.g. "3.11"."""
        return self.value[len("PYTHON") :].replace("_", ".")


class Strict(BaseModel):
    """Base of every spec model: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


SOURCE_FIELDS = ("code_src", "code", "base64", "handler", "init_function", "lang")
"""Source fields a function spec may give flat; nested, `code_src` is spelt `source`."""


def nest_source(function: dict[str, Any]) -> dict[str, Any]:
    """The function dict with flat source fields moved under `source` (`source.source` is
    spelt `code_src`); a field given both ways with different values is a ValueError."""
    nested = function.get("source", {})
    if not isinstance(nested, dict):  # field validation reports the bad `source`, alone
        return {k: v for k, v in function.items() if k not in SOURCE_FIELDS}
    merged = dict(nested)
    if "source" in merged:
        if "code_src" in merged and merged["code_src"] != merged["source"]:
            raise ValueError("source.source and source.code_src differ: give one")
        merged["code_src"] = merged.pop("source")
    for key in SOURCE_FIELDS:
        if key in function:
            if key in merged and merged[key] != function[key]:
                raise ValueError(
                    f"{key} is given both flat and under source, with different values"
                )
            merged[key] = function[key]
    rest = {k: v for k, v in function.items() if k not in SOURCE_FIELDS}
    return {**rest, "source": merged}


class SourceSpec(Strict):
    """Where the code comes from and what to call in it."""

    code_src: Optional[str] = Field(default=None, alias="source")
    code: Optional[str] = None
    base64: Optional[str] = None
    handler: str = "handler"
    init_function: Optional[str] = None
    lang: Literal["python"] = "python"

    @model_validator(mode="after")
    def _one_kind_of_code(self) -> SourceSpec:
        if self.code is not None and self.base64 is not None:
            raise ValueError("give code or base64, not both")
        if self.code is None and self.base64 is None and not self.code_src:
            raise ValueError("no code: give one of code, base64 or code_src")
        return self


_K8S_QUANTITY = re.compile(
    r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"  # a decimal number, then an exponent or a suffix
    r"([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?"
)


def _quantity(value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("must be a Kubernetes quantity such as 500m, 2 or 1Gi")
    if not _K8S_QUANTITY.fullmatch(str(value)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
    if quantity_value(str(value)) > QUANTITY_MAX:
        raise ValueError(f"{value!r} is more than a Kubernetes quantity may be (2^63-1)")
    return str(value)


def _size(value: Any) -> Any:
    """A quantity of storage (a volume's or the scratch volume's size): more than 0."""
    size = _quantity(value)
    if size is not None and quantity_value(size) <= 0:
        raise ValueError(f"{value!r} is not a size: give more than 0 (e.g. 1Gi)")
    return size


def _flat_amount(value: Any) -> Any:
    """DigitalHub 0.15's flat form of a resource (`cpu: "500m"`, `gpu: 1`) as `{requests,
    limits}`: one quantity is both."""
    if value is None or isinstance(value, (dict, BaseModel)):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(
            "expected a Kubernetes quantity such as 500m, 2 or 1Gi, or {requests, limits};"
            f" got {type(value).__name__} {value!r}"
        )
    quantity = _quantity(value)
    return {"requests": quantity, "limits": quantity}


_SUFFIXES = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9",
             "T": "1e12", "P": "1e15", "E": "1e18", "Ki": "1024", "Mi": "1048576",
             "Gi": "1073741824", "Ti": "1099511627776", "Pi": "1125899906842624",
             "Ei": "1152921504606846976"}  # fmt: skip


QUANTITY_MAX = Decimal(2**63 - 1)
"""The largest number a Kubernetes quantity may stand for."""
_WIDE = Context(prec=60, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
"""Arithmetic for any quantity: an exponent beyond Decimal's range gives Infinity (or 0)."""


def quantity_value(quantity: str) -> Decimal:
    """The number a (valid) Kubernetes quantity stands for, to compare two of them."""
    match = re.fullmatch(r"[+]?([0-9.]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]*)", quantity)
    assert match is not None, quantity
    number, exponent, suffix = match.groups()
    power = max(-(10**9), min(int(exponent or 0), 10**9))  # far beyond any quantity's range
    scaled = Decimal(number).scaleb(power, _WIDE)
    return _WIDE.multiply(scaled, Decimal(_SUFFIXES[suffix]))


class ResourceAmount(Strict):
    """Requests and limits of one resource, as Kubernetes quantities (requests ≤ limits)."""

    requests: Optional[str] = None
    limits: Optional[str] = None

    _check = field_validator("requests", "limits", mode="before")(_quantity)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceAmount:
        if self.requests is None or self.limits is None:
            return self
        if quantity_value(self.requests) > quantity_value(self.limits):
            raise ValueError(f"requests ({self.requests}) are greater than limits ({self.limits})")
        return self


class Resources(Strict):
    """Resources of a task: cpu, mem and gpu (nvidia.com/gpu) each `{requests, limits}` or one
    quantity, DigitalHub 0.15's flat form, that is both; disk sizes the scratch volume."""

    cpu: Optional[ResourceAmount] = None
    mem: Optional[ResourceAmount] = None
    gpu: Optional[ResourceAmount] = None
    disk: Optional[str] = None

    _flat = field_validator("cpu", "mem", "gpu", mode="before")(_flat_amount)
    _disk = field_validator("disk", mode="before")(_size)

    @field_validator("gpu")
    @classmethod
    def _gpu_limits(cls, gpu: Optional[ResourceAmount]) -> Optional[ResourceAmount]:
        """Kubernetes takes a gpu only as a whole number and a limit (requests, if given, equal
        to it): requests alone become the limit."""
        if gpu is None:
            return gpu
        for side, amount in (("requests", gpu.requests), ("limits", gpu.limits)):
            value = None if amount is None else quantity_value(amount)
            if value is not None and value != value.to_integral_value():
                where = "" if gpu.requests == gpu.limits else f"{side}: "  # not for a flat one
                raise ValueError(f"{where}{amount!r} is not a whole number of GPUs")
        if gpu.requests is None:
            return gpu
        if gpu.limits is not None and quantity_value(gpu.limits) != quantity_value(gpu.requests):
            raise ValueError(
                f"requests ({gpu.requests}) and limits ({gpu.limits}) differ: Kubernetes needs"
                " a gpu's requests equal to its limits (give limits only)"
            )
        return ResourceAmount(requests=gpu.requests, limits=gpu.limits or gpu.requests)


class NodeSelectorItem(Strict):
    """One `{key, value}` node-selector entry."""

    key: str
    value: str


class EnvVar(Strict):
    """One environment variable of the task's container: a value, or `value_from` (a
    Kubernetes EnvVarSource, e.g. a secret's key) that only a deployment resolves."""

    name: str
    value: Optional[str] = None
    value_from: Optional[dict[str, Any]] = None

    @model_validator(mode="after")
    def _value_or_reference(self) -> EnvVar:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("give value or value_from, one of them")
        return self


SCRATCH_MOUNT, SPEC_MOUNT = "/tmp", "/etc/fn-wrapper"
"""Where every rendered pod mounts its scratch volume and (for fetched code) its run spec."""
_BUILT_IN_VOLUMES = {"scratch": SCRATCH_MOUNT, "spec": SPEC_MOUNT}
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_VOLUME_OPTIONS = {
    "persistent_volume_claim": ("claim_name", "size"),
    "empty_dir": ("size_limit", "sizeLimit", "medium"),
    "ephemeral": ("size",),
    "shared_volume": ("claim_name", "claimName", "size"),
    "config_map": ("name",),
    "secret": ("secret_name",),
}
"""Each volume type's `spec` options: DigitalHub 0.15's (`size`, `size_limit`, `medium`), the
camelCase ones its core reads (kept under the SDK's spelling), and ours (the names)."""
_SPELLINGS = {"sizeLimit": "size_limit", "claimName": "claim_name"}
_SIZES = ("size", "size_limit")


class Volume(Strict):
    """A volume mounted in the task's container; `spec` holds its type's options."""

    volume_type: Literal[
        "persistent_volume_claim", "empty_dir", "ephemeral", "shared_volume", "config_map", "secret"
    ]
    name: str
    mount_path: str
    spec: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("name")
    @classmethod
    def _volume_name(cls, name: str) -> str:
        if not _DNS_LABEL.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a volume name (lower-case letters, digits and '-', at most 63)"
            )
        if name in _BUILT_IN_VOLUMES:
            raise ValueError(f"{name!r} is the name of a volume every pod already has")
        return name

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute path")
        if posixpath.normpath(path) in (*_BUILT_IN_VOLUMES.values(), "/"):
            raise ValueError(f"{path!r} is where every pod mounts a volume of its own")
        return path

    @field_validator("spec", mode="before")
    @classmethod
    def _no_spec(cls, spec: Any) -> Any:
        return {} if spec is None else spec  # DigitalHub's spec may be null

    @field_validator("spec")
    @classmethod
    def _options(cls, spec: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("volume_type")
        if kind is None:  # the volume type is reported alone
            return spec
        allowed = _VOLUME_OPTIONS[kind]
        options: dict[str, Any] = {}
        for key, value in spec.items():
            if key not in allowed:
                raise ValueError(
                    f"{key!r} is not an option of {kind} volumes (allowed: {', '.join(allowed)})"
                )
            option = _SPELLINGS.get(key, key)
            if value is None:  # DigitalHub's options may be null: unset
                continue
            if option in _SIZES:
                value = _size(value)
            elif option == "medium" and value not in ("", "Memory"):
                raise ValueError(f"medium {value!r} is not one of '', Memory")
            elif option != "medium" and (not isinstance(value, str) or not value):
                raise ValueError(f"{key}: expected a name, got {value!r}")
            if options.get(option, value) != value:
                other = next(k for k in spec if k != key and _SPELLINGS.get(k, k) == option)
                raise ValueError(f"{other} and {key} differ: give one")
            options[option] = value
        if kind == "ephemeral" and "size" not in options:
            raise ValueError("an ephemeral volume needs a size (e.g. size: 1Gi)")
        if kind == "persistent_volume_claim" and {"claim_name", "size"} <= options.keys():
            raise ValueError(
                "give claim_name (an existing claim) or size (a new one for the run), not both"
            )
        return options


class Affinity(Strict):
    """Kubernetes pod affinity; each part in Kubernetes' own shape."""

    nodeAffinity: Optional[dict[str, Any]] = None
    podAffinity: Optional[dict[str, Any]] = None
    podAntiAffinity: Optional[dict[str, Any]] = None


class Toleration(Strict):
    """A Kubernetes toleration."""

    key: Optional[str] = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    tolerationSeconds: Optional[int] = None

    @model_validator(mode="after")
    def _as_kubernetes_allows(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists takes no value")
        if not self.key and self.operator != "Exists":
            raise ValueError(
                "key: an empty key (matching every taint) needs operator Exists, not Equal"
            )
        if self.tolerationSeconds is not None and self.effect != "NoExecute":
            raise ValueError(
                f"tolerationSeconds: needs effect NoExecute, not {self.effect or 'none'}"
            )
        return self


class TaskSpec(Strict):
    """How a function runs: the action and its Kubernetes settings."""

    action: Literal["job", "serve", "build"] = "job"
    node_selector: list[NodeSelectorItem] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    affinity: Optional[Affinity] = None
    tolerations: list[Toleration] = Field(default_factory=list)
    envs: list[EnvVar] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    profile: Optional[str] = None
    replicas: Optional[int] = Field(default=None, ge=0)
    service_type: Optional[Literal["ClusterIP", "NodePort", "LoadBalancer"]] = None
    service_name: Optional[str] = None
    instructions: list[str] = Field(default_factory=list)

    @field_validator("volumes")
    @classmethod
    def _distinct_volumes(cls, volumes: list[Volume]) -> list[Volume]:
        for field in ("name", "mount_path"):
            seen = [posixpath.normpath(getattr(v, field)) for v in volumes]
            twice = next((value for value in seen if seen.count(value) > 1), None)
            if twice is not None:
                raise ValueError(f"two volumes have the {field} {twice!r}")
        return volumes


def _pep508(line: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(line)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{line!r} is not a PEP 508 requirement: {reason}") from None
    return line


class FunctionSpec(Strict):
    """A python function: its identity, its source and what its image needs."""

    name: str = Field(min_length=1)
    kind: Literal["python"] = "python"
    uuid: Optional[str] = None
    description: Optional[str] = None
    labels: list[str] = Field(default_factory=list)
    embedded: Optional[bool] = None
    project: Optional[str] = None
    source: SourceSpec
    python_version: PythonVersion
    image: Optional[str] = None
    base_image: Optional[str] = None
    requirements: list[Annotated[str, AfterValidator(_pep508)]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_source(cls, data: Any) -> Any:
        return nest_source(data) if isinstance(data, dict) else data

    @field_validator("uuid")
    @classmethod
    def _uuid4(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a UUID") from None
        if parsed.version != 4:
            raise ValueError(f"{value!r} is a version {parsed.version} UUID; a UUID4 is required")
        return value

    @model_validator(mode="after")
    def _project_only_from_library(self) -> FunctionSpec:
        if self.project is not None and "library" not in self.labels:
            raise ValueError(
                "project must not be set on a function (give it to the run: --project or "
                "FN_WRAPPER_PROJECT); only functions from a library (label 'library') carry one"
            )
        return self


class RunSpec(Strict):
    """What one run passes: entity inputs, parameters and init parameters."""

    inputs: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    init_parameters: dict[str, Any] = Field(default_factory=dict)
    local_execution: bool = False


class NuclioSection(Strict):
    """What a Nuclio function config gave that only a deployment (or a setting) uses, kept
    so that `render` gives it back (wrapper/spec/nuclio.py fills it)."""

    namespace: Optional[str] = None
    annotations: dict[str, str] = Field(default_factory=dict)
    triggers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    disable_default_http_trigger: Optional[bool] = None
    workers: Optional[int] = Field(default=None, ge=1)
    max_replicas: Optional[int] = Field(default=None, ge=0)
    target_cpu: Optional[int] = Field(default=None, ge=1)
    event_timeout: Optional[str] = None
    code_entry: dict[str, Any] = Field(default_factory=dict)
    unmapped: list[str] = Field(default_factory=list)
    """The config's fields with no meaning here (named in one warning)."""


class RunDocument(Strict):
    """A whole run spec document: `{"function": ..., "task": ..., "run": ...}`, plus the
    `nuclio` section of one read from a Nuclio function config."""

    function: FunctionSpec
    task: TaskSpec = Field(default_factory=TaskSpec)
    run: RunSpec = Field(default_factory=RunSpec)
    nuclio: Optional[NuclioSection] = None

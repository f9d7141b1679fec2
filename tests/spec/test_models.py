"""The spec models (DESIGN §2): every field in its valid forms, flat and nested sources, rules."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from wrapper.spec.models import (
    SOURCE_FIELDS,
    FunctionSpec,
    PythonVersion,
    RunDocument,
    RunSpec,
    SourceSpec,
    TaskSpec,
    nest_source,
)

UUID4 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def function(**fields: Any) -> dict[str, Any]:
    """A minimal valid function dict (inline code) with `fields` laid over it."""
    base: dict[str, Any] = {"name": "f", "python_version": "PYTHON3_11", "code": "x = 1"}
    base.update(fields)
    return base


def errors_of(model: Any, data: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value.errors(include_url=False)


# --- function spec ---------------------------------------------------------------------------


def test_minimal_function_has_documented_defaults() -> None:
    spec = FunctionSpec.model_validate({"name": "f", "python_version": "PYTHON3_9", "code": "x"})
    assert spec.name == "f"
    assert spec.kind == "python"
    assert spec.python_version is PythonVersion.PYTHON3_9
    assert spec.source == SourceSpec(code="x")
    assert spec.source.handler == "handler"
    assert spec.source.init_function is None
    assert spec.source.lang == "python"
    assert spec.source.code_src is None and spec.source.base64 is None
    assert spec.labels == [] and spec.requirements == []
    assert spec.uuid is None and spec.project is None and spec.embedded is None
    assert spec.description is None and spec.image is None and spec.base_image is None


def test_every_function_field_in_a_valid_form() -> None:
    spec = FunctionSpec.model_validate(
        function(
            kind="python",
            uuid=UUID4,
            description="says hello",
            labels=["library", "demo"],
            embedded=True,
            project="lib-project",
            image="registry.example/hello:1",
            base_image="python:3.11-slim",
            requirements=["numpy", "pandas>=2,<3"],
            handler="main:handler",
            init_function="init",
            lang="python",
        )
    )
    assert spec.uuid == UUID4
    assert spec.description == "says hello"
    assert spec.labels == ["library", "demo"]
    assert spec.embedded is True
    assert spec.project == "lib-project"
    assert spec.image == "registry.example/hello:1"
    assert spec.base_image == "python:3.11-slim"
    assert spec.requirements == ["numpy", "pandas>=2,<3"]
    assert spec.source.handler == "main:handler"
    assert spec.source.init_function == "init"


@pytest.mark.parametrize(
    "version", ["PYTHON3_9", "PYTHON3_10", "PYTHON3_11", "PYTHON3_12", "PYTHON3_13"]
)
def test_supported_python_versions(version: str) -> None:
    spec = FunctionSpec.model_validate(function(python_version=version))
    assert spec.python_version.value == version
    assert spec.python_version.version == "3." + version.rsplit("_", 1)[1]


@pytest.mark.parametrize(
    "version", ["PYTHON3_8", "PYTHON3_14", "3.11", "python3_11", "", None, 3.11]
)
def test_unsupported_python_versions_are_refused(version: Any) -> None:
    errors = errors_of(FunctionSpec, function(python_version=version))
    assert [e["loc"] for e in errors] == [("python_version",)]


def test_python_version_is_required() -> None:
    data = function()
    del data["python_version"]
    errors = errors_of(FunctionSpec, data)
    assert [(e["loc"], e["type"]) for e in errors] == [(("python_version",), "missing")]


def test_python_version_running_names_this_interpreter() -> None:
    running = PythonVersion.running()
    expected = "PYTHON{}_{}".format(*sys.version_info[:2])
    if expected in PythonVersion.__members__:
        assert running is PythonVersion[expected]
        assert running.version == "{}.{}".format(*sys.version_info[:2])
    else:
        assert running is None


@pytest.mark.parametrize(
    "requirement",
    [
        "numpy",
        "pandas>=2,<3",
        "requests[socks]==2.31.0",
        'pywin32>=300; sys_platform == "win32"',
        "mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl",
        "Django~=4.2",
    ],
)
def test_pep508_requirements_accepted(requirement: str) -> None:
    spec = FunctionSpec.model_validate(function(requirements=[requirement]))
    assert spec.requirements == [requirement]


@pytest.mark.parametrize("requirement", ["numpy>=", "pandas==1.0 extra", ">=1.0", "a b c", ""])
def test_non_pep508_requirements_refused(requirement: str) -> None:
    errors = errors_of(FunctionSpec, function(requirements=["ok", requirement]))
    assert [e["loc"] for e in errors] == [("requirements", 1)]
    assert "PEP 508" in errors[0]["msg"]


def test_name_is_required_and_not_empty() -> None:
    data = function()
    del data["name"]
    assert [e["loc"] for e in errors_of(FunctionSpec, data)] == [("name",)]
    assert [e["loc"] for e in errors_of(FunctionSpec, function(name=""))] == [("name",)]


@pytest.mark.parametrize("kind", ["java", "Python", "nuclio"])
def test_kind_must_be_python(kind: str) -> None:
    assert [e["loc"] for e in errors_of(FunctionSpec, function(kind=kind))] == [("kind",)]


@pytest.mark.parametrize(
    "value",
    [UUID4, UUID4.upper(), UUID4.replace("-", ""), "urn:uuid:" + UUID4],
)
def test_uuid4_accepted_in_its_usual_spellings(value: str) -> None:
    assert FunctionSpec.model_validate(function(uuid=value)).uuid == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not-a-uuid", "is not a UUID"),
        ("3a1a3c1e-0000-1000-8000-000000000000", "version 1 UUID"),
        ("3a1a3c1e-0000-5000-8000-000000000000", "version 5 UUID"),
    ],
)
def test_uuid_other_than_uuid4_refused(value: str, fragment: str) -> None:
    errors = errors_of(FunctionSpec, function(uuid=value))
    assert [e["loc"] for e in errors] == [("uuid",)]
    assert fragment in errors[0]["msg"]


def test_project_only_on_library_functions() -> None:
    errors = errors_of(FunctionSpec, function(project="p"))
    assert len(errors) == 1
    assert "project must not be set" in errors[0]["msg"]
    errors = errors_of(FunctionSpec, function(project="p", labels=["demo"]))
    assert "project must not be set" in errors[0]["msg"]
    assert FunctionSpec.model_validate(function(project="p", labels=["library"])).project == "p"


def test_unknown_function_field_refused() -> None:
    errors = errors_of(FunctionSpec, function(colour="blue"))
    assert [(e["loc"], e["type"]) for e in errors] == [(("colour",), "extra_forbidden")]


# --- source: flat and nested -----------------------------------------------------------------


NESTED_NAMES = {"code_src": "source"}
"""How DigitalHub spells a source field nested under `source` (only code_src differs)."""


@pytest.mark.parametrize(
    "fields",
    [
        {"code_src": "src/main.py", "handler": "main:handler", "init_function": "init"},
        {"code": "def handler(event):\n    return 1\n", "handler": "handler", "lang": "python"},
        {"base64": "eCA9IDEK", "code_src": "pkg/job.py", "handler": "pkg.job:run"},
        {"code_src": "git+https://example.com/org/repo.git#main", "init_function": "setup"},
    ],
)
def test_flat_and_nested_source_load_the_same(fields: dict[str, Any]) -> None:
    base = {"name": "f", "python_version": "PYTHON3_12"}
    flat = FunctionSpec.model_validate({**base, **fields})
    nested = FunctionSpec.model_validate(
        {**base, "source": {NESTED_NAMES.get(k, k): v for k, v in fields.items()}}
    )
    assert flat == nested
    for key, value in fields.items():
        assert getattr(flat.source, key) == value


def test_nested_source_also_accepts_code_src_by_its_name() -> None:
    spec = FunctionSpec.model_validate(
        {"name": "f", "python_version": "PYTHON3_12", "source": {"code_src": "a.py"}}
    )
    assert spec.source.code_src == "a.py"


_source_values = {
    "code_src": st.sampled_from(["main.py", "src/", "https://example.com/f.py"]),
    "code": st.text(min_size=1, max_size=20),
    "handler": st.sampled_from(["handler", "main:handler", "pkg.mod:Cls.method"]),
    "init_function": st.sampled_from(["init", "main:init"]),
    "lang": st.just("python"),
}


@given(
    values=st.fixed_dictionaries({}, optional=_source_values),
    placement=st.lists(st.sampled_from(["flat", "nested", "both"]), min_size=5, max_size=5),
)
def test_any_mix_of_flat_and_nested_fields_loads_like_all_flat(
    values: dict[str, Any], placement: list[str]
) -> None:
    values.setdefault("code", "x = 1")
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for (key, value), where in zip(sorted(values.items()), placement):
        if where in ("flat", "both"):
            flat[key] = value
        if where in ("nested", "both"):
            nested[NESTED_NAMES.get(key, key)] = value
    base = {"name": "f", "python_version": "PYTHON3_10"}
    mixed = FunctionSpec.model_validate({**base, **flat, "source": nested})
    all_flat = FunctionSpec.model_validate({**base, **values})
    assert mixed == all_flat


@pytest.mark.parametrize(
    ("flat", "nested"),
    [
        ({"code_src": "a.py"}, {"source": "b.py"}),
        ({"code": "x = 1"}, {"code": "x = 2"}),
        ({"handler": "main:a", "code": "x"}, {"handler": "main:b"}),
        ({"init_function": "init", "code": "x"}, {"init_function": "setup"}),
        ({"base64": "eA==", "code_src": "a.py"}, {"base64": "eQ=="}),
    ],
)
def test_field_given_flat_and_nested_with_different_values_is_an_error(
    flat: dict[str, Any], nested: dict[str, Any]
) -> None:
    data = {"name": "f", "python_version": "PYTHON3_11", **flat, "source": nested}
    errors = errors_of(FunctionSpec, data)
    assert len(errors) == 1
    assert "both flat and under source" in errors[0]["msg"]
    with pytest.raises(ValueError, match="both flat and under source"):
        nest_source(data)


def test_nest_source_moves_flat_fields_under_source() -> None:
    data = {"name": "f", "code_src": "a.py", "handler": "h", "labels": ["x"]}
    assert nest_source(data) == {
        "name": "f",
        "labels": ["x"],
        "source": {"code_src": "a.py", "handler": "h"},
    }
    assert nest_source({"name": "f", "source": {"source": "b.py", "lang": "python"}}) == {
        "name": "f",
        "source": {"code_src": "b.py", "lang": "python"},
    }
    assert set(SOURCE_FIELDS) == {"code_src", "code", "base64", "handler", "init_function", "lang"}


def test_code_and_base64_together_refused() -> None:
    errors = errors_of(FunctionSpec, function(base64="eA=="))
    assert [e["loc"] for e in errors] == [("source",)]
    assert "not both" in errors[0]["msg"]


def test_source_without_any_code_refused() -> None:
    for data in (
        {"name": "f", "python_version": "PYTHON3_11"},
        {"name": "f", "python_version": "PYTHON3_11", "handler": "main:handler"},
        {"name": "f", "python_version": "PYTHON3_11", "source": {"source": ""}},
    ):
        errors = errors_of(FunctionSpec, data)
        assert [e["loc"] for e in errors] == [("source",)]
        assert "no code" in errors[0]["msg"]


def test_base64_with_code_src_is_allowed() -> None:
    """DigitalHub sends base64 together with the original path."""
    spec = FunctionSpec.model_validate(
        {
            "name": "f",
            "python_version": "PYTHON3_11",
            "source": {"source": "a/b.py", "base64": "eA=="},
        }
    )
    assert (spec.source.code_src, spec.source.base64) == ("a/b.py", "eA==")


@pytest.mark.parametrize("lang", ["go", "Python", "javascript"])
def test_lang_must_be_python(lang: str) -> None:
    errors = errors_of(FunctionSpec, function(lang=lang))
    assert [e["loc"] for e in errors] == [("source", "lang")]


def test_unknown_nested_source_field_refused() -> None:
    errors = errors_of(
        FunctionSpec,
        {"name": "f", "python_version": "PYTHON3_11", "source": {"code": "x", "entry": 1}},
    )
    assert [(e["loc"], e["type"]) for e in errors] == [(("source", "entry"), "extra_forbidden")]


# --- task spec -------------------------------------------------------------------------------


def test_task_defaults() -> None:
    task = TaskSpec()
    assert task.action == "job"
    assert task.node_selector == [] and task.volumes == [] and task.tolerations == []
    assert task.envs == [] and task.secrets == [] and task.instructions == []
    assert task.resources.cpu is None and task.resources.mem is None and task.resources.gpu is None
    assert task.resources.disk is None
    assert task.affinity is None and task.profile is None and task.replicas is None
    assert task.service_type is None and task.service_name is None


@pytest.mark.parametrize("action", ["job", "serve", "build"])
def test_task_actions(action: str) -> None:
    assert TaskSpec.model_validate({"action": action}).action == action


@pytest.mark.parametrize("action", ["run", "Job", "deploy", ""])
def test_unknown_task_action_refused(action: str) -> None:
    assert [e["loc"] for e in errors_of(TaskSpec, {"action": action})] == [("action",)]


def test_every_task_field_in_a_valid_form() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    task = TaskSpec.model_validate(
        {
            "action": "serve",
            "node_selector": [{"key": "zone", "value": "a"}, {"key": "disk", "value": "ssd"}],
            "volumes": [
                {
                    "volume_type": "persistent_volume_claim",
                    "name": "data",
                    "mount_path": "/data",
                    "spec": {"claim_name": "pvc-1"},
                },
                {"volume_type": "empty_dir", "name": "tmp", "mount_path": "/tmp/x"},
                {"volume_type": "config_map", "name": "cfg", "mount_path": "/etc/cfg"},
                {"volume_type": "secret", "name": "sec", "mount_path": "/etc/sec"},
            ],
            "resources": {
                "cpu": {"requests": "500m", "limits": 2},
                "mem": {"requests": "256Mi", "limits": "1Gi"},
                "gpu": {"limits": "1"},
            },
            "affinity": affinity,
            "tolerations": [toleration],
            "envs": [{"name": "MODE", "value": "fast"}],
            "secrets": ["db-credentials"],
            "profile": "small",
            "replicas": 3,
            "service_type": "NodePort",
            "service_name": "hello",
            "instructions": ["RUN apt-get update", "RUN pip install extra"],
        }
    )
    assert [(n.key, n.value) for n in task.node_selector] == [("zone", "a"), ("disk", "ssd")]
    assert [v.volume_type for v in task.volumes] == [
        "persistent_volume_claim",
        "empty_dir",
        "config_map",
        "secret",
    ]
    assert task.volumes[0].spec == {"claim_name": "pvc-1"}
    assert task.volumes[1].spec == {}
    assert task.resources.cpu is not None and task.resources.cpu.limits == "2"
    assert task.resources.cpu.requests == "500m"
    assert task.resources.mem is not None and task.resources.mem.limits == "1Gi"
    assert task.resources.gpu is not None and task.resources.gpu.limits == "1"
    assert task.resources.gpu.requests is None
    assert task.affinity is not None and task.affinity.model_dump(exclude_none=True) == affinity
    assert [t.model_dump(exclude_none=True) for t in task.tolerations] == [toleration]
    assert [(e.name, e.value) for e in task.envs] == [("MODE", "fast")]
    assert task.secrets == ["db-credentials"]
    assert task.profile == "small"
    assert task.replicas == 3
    assert task.service_type == "NodePort"
    assert task.service_name == "hello"
    assert task.instructions == ["RUN apt-get update", "RUN pip install extra"]


@pytest.mark.parametrize("service_type", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_service_types(service_type: str) -> None:
    assert TaskSpec.model_validate({"service_type": service_type}).service_type == service_type


def test_replicas_zero_allowed_negative_refused() -> None:
    assert TaskSpec.model_validate({"replicas": 0}).replicas == 0
    assert [e["loc"] for e in errors_of(TaskSpec, {"replicas": -1})] == [("replicas",)]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("500m", "500m"),
        ("2", "2"),
        (2, "2"),
        (0.5, "0.5"),
        ("1.5", "1.5"),
        (".5", ".5"),
        ("1Gi", "1Gi"),
        ("512Mi", "512Mi"),
        ("1Ki", "1Ki"),
        ("1k", "1k"),
        ("2M", "2M"),
        ("1e3", "1e3"),
        ("+1", "+1"),
    ],
)
def test_kubernetes_quantities_accepted(value: Any, stored: str) -> None:
    task = TaskSpec.model_validate({"resources": {"mem": {"requests": value}}})
    assert task.resources.mem is not None and task.resources.mem.requests == stored


@pytest.mark.parametrize(
    "value",
    [
        "lots",
        "1GB",
        "1gi",
        "-1",
        "",
        "m",
        "1 Gi",
        True,
        [1],
        {"a": 1},
        # Kubernetes quantities are ASCII digits and nothing after the suffix.
        pytest.param("\u0661\u0662Gi", id="arabic-indic-digits"),
        pytest.param("1Gi\n", id="trailing-newline"),
    ],
)
def test_non_quantities_refused(value: Any) -> None:
    errors = errors_of(TaskSpec, {"resources": {"cpu": {"limits": value}}})
    assert [e["loc"] for e in errors] == [("resources", "cpu", "limits")]
    assert "Kubernetes quantity" in errors[0]["msg"]


@given(
    number=st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?|\.[0-9]{1,3}", fullmatch=True),
    suffix=st.sampled_from(["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "e3", "E-2"]),
)
def test_generated_quantities_accepted(number: str, suffix: str) -> None:
    task = TaskSpec.model_validate({"resources": {"cpu": {"requests": number + suffix}}})
    assert task.resources.cpu is not None and task.resources.cpu.requests == number + suffix


def test_unknown_resource_refused() -> None:
    errors = errors_of(TaskSpec, {"resources": {"memory": "1Gi"}})
    assert [(e["loc"], e["type"]) for e in errors] == [(("resources", "memory"), "extra_forbidden")]


@pytest.mark.parametrize(
    ("value", "stored"), [("500m", "500m"), ("2", "2"), (2, "2"), (0.5, "0.5"), ("1Gi", "1Gi")]
)
def test_a_flat_resource_is_both_request_and_limit(value: Any, stored: str) -> None:
    """DigitalHub 0.15 writes `cpu: "500m"`, `gpu: 1`: one quantity, strings or ints."""
    task = TaskSpec.model_validate({"resources": {"cpu": value, "mem": value}})
    for amount in (task.resources.cpu, task.resources.mem):
        assert amount is not None and (amount.requests, amount.limits) == (stored, stored)


def test_flat_and_mapping_resources_mix() -> None:
    task = TaskSpec.model_validate(
        {"resources": {"cpu": {"requests": "250m"}, "mem": "256Mi", "gpu": 1, "disk": "2Gi"}}
    )
    assert task.resources.cpu is not None and task.resources.cpu.limits is None
    assert task.resources.gpu is not None and task.resources.gpu.limits == "1"
    assert task.resources.disk == "2Gi"
    assert TaskSpec.model_validate({"resources": {"disk": 1024}}).resources.disk == "1024"


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": "5 cores"}, "'5 cores' is not a Kubernetes quantity"),
        ({"cpu": True}, "expected a Kubernetes quantity such as 500m, 2 or 1Gi, or {requests,"),
        ({"mem": ["1Gi"]}, "got list ['1Gi']"),
        ({"gpu": "0.5"}, "'0.5' is not a whole number of GPUs"),
        ({"disk": "lots"}, "'lots' is not a Kubernetes quantity"),
        ({"disk": "0"}, "'0' is not a size: give more than 0"),
        ({"disk": {"requests": "1Gi"}}, "must be a Kubernetes quantity"),
    ],
)
def test_bad_flat_resources_name_the_resource(resources: dict[str, Any], message: str) -> None:
    (error,) = errors_of(TaskSpec, {"resources": resources})
    assert error["loc"] == ("resources", next(iter(resources)))
    assert message in error["msg"]


@pytest.mark.parametrize(
    ("task", "loc"),
    [
        ({"node_selector": {"zone": "a"}}, ("node_selector",)),
        ({"node_selector": [{"key": "zone"}]}, ("node_selector", 0, "value")),
        (
            {"volumes": [{"volume_type": "nfs", "name": "a", "mount_path": "/a"}]},
            ("volumes", 0, "volume_type"),
        ),
        ({"volumes": [{"volume_type": "secret", "name": "a"}]}, ("volumes", 0, "mount_path")),
        ({"envs": [{"name": "A"}]}, ("envs", 0)),
        ({"secrets": "one"}, ("secrets",)),
        ({"service_type": "Ingress"}, ("service_type",)),
        ({"instructions": "RUN x"}, ("instructions",)),
        ({"resources": {"cpu": {"requests": "1.5", "limits": "1499m"}}}, ("resources", "cpu")),
        ({"resources": {"gpu": {"requests": "1", "limits": "2"}}}, ("resources", "gpu")),
        ({"volumes": [{"volume_type": "secret", "name": "a.b", "mount_path": "/a"}]},
         ("volumes", 0, "name")),
        ({"volumes": [{"volume_type": "secret", "name": "spec", "mount_path": "/a"}]},
         ("volumes", 0, "name")),
        ({"volumes": [{"volume_type": "secret", "name": "a", "mount_path": "/etc/fn-wrapper"}]},
         ("volumes", 0, "mount_path")),
        ({"volumes": [{"volume_type": "secret", "name": "a", "mount_path": "/a",
                       "spec": {"name": "x"}}]}, ("volumes", 0, "spec")),
        ({"volumes": [{"volume_type": "empty_dir", "name": "a", "mount_path": "/a",
                       "spec": {"medium": "Disk"}}]}, ("volumes", 0, "spec")),
        ({"volumes": [{"volume_type": "empty_dir", "name": "a", "mount_path": "/a"},
                      {"volume_type": "empty_dir", "name": "b", "mount_path": "/a/"}]},
         ("volumes",)),
        ({"affinity": {"nodeAffinity": {}, "foo": "bar"}}, ("affinity", "foo")),
        ({"tolerations": [{"operator": "Exists", "value": "x"}]}, ("tolerations", 0)),
        ({"tolerations": [{"key": "a", "color": "red"}]}, ("tolerations", 0, "color")),
        ({"tolerations": [{"effect": "NoSchedule"}]}, ("tolerations", 0)),
        ({"tolerations": [{"key": "a", "tolerationSeconds": 5}]}, ("tolerations", 0)),
        ({"resources": {"gpu": {"limits": "0.5"}}}, ("resources", "gpu")),
        ({"resources": {"gpu": {"requests": "1.5", "limits": "1.5"}}}, ("resources", "gpu")),
        ({"resources": {"cpu": {"requests": "1e9999999"}}}, ("resources", "cpu", "requests")),
        ({"resources": {"cpu": {"limits": "9223372036854775808"}}},
         ("resources", "cpu", "limits")),
    ],
)  # fmt: skip
def test_bad_task_fields_refused(task: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert [e["loc"] for e in errors_of(TaskSpec, task)] == [loc]


def volume(volume_type: str, spec: Any = None) -> dict[str, Any]:
    return {"volume_type": volume_type, "name": "v", "mount_path": "/v", "spec": spec}


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (volume("ephemeral", {"size": "1Gi"}), {"size": "1Gi"}),
        (volume("shared_volume", {"size": "10Gi"}), {"size": "10Gi"}),
        (volume("shared_volume", {"claimName": "team"}), {"claim_name": "team"}),
        (volume("persistent_volume_claim", {"size": 1073741824}), {"size": "1073741824"}),
        (volume("persistent_volume_claim", None), {}),
        (volume("empty_dir", {"size_limit": "1Gi", "medium": "Memory"}),
         {"size_limit": "1Gi", "medium": "Memory"}),
        (volume("empty_dir", {"sizeLimit": "1Gi", "size_limit": "1Gi"}), {"size_limit": "1Gi"}),
        (volume("empty_dir", {"size_limit": None, "medium": None}), {}),
    ],
)  # fmt: skip
def test_digitalhub_volume_specs(given: dict[str, Any], kept: dict[str, Any]) -> None:
    """DigitalHub 0.15's types and options, and the camelCase its core reads, under the SDK's
    spelling."""
    (kept_volume,) = TaskSpec.model_validate({"volumes": [given]}).volumes
    assert kept_volume.spec == kept


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (volume("ephemeral"), "an ephemeral volume needs a size (e.g. size: 1Gi)"),
        (volume("ephemeral", {"size": "0"}), "'0' is not a size"),
        (volume("ephemeral", {"size": "big"}), "'big' is not a Kubernetes quantity"),
        (volume("ephemeral", {"claim_name": "x"}),
         "'claim_name' is not an option of ephemeral volumes (allowed: size)"),
        (volume("persistent_volume_claim", {"claim_name": "x", "size": "1Gi"}),
         "give claim_name (an existing claim) or size (a new one for the run), not both"),
        (volume("persistent_volume_claim", {"claimName": "x"}), "'claimName' is not an option"),
        (volume("empty_dir", {"sizeLimit": "1Gi", "size_limit": "2Gi"}),
         "sizeLimit and size_limit differ: give one"),
        (volume("shared_volume", {"claim_name": ""}), "claim_name: expected a name, got ''"),
    ],
)  # fmt: skip
def test_bad_digitalhub_volume_specs(given: dict[str, Any], message: str) -> None:
    (error,) = errors_of(TaskSpec, {"volumes": [given]})
    assert error["loc"] == ("volumes", 0, "spec")
    assert message in error["msg"]


@pytest.mark.parametrize(
    ("requests", "limits"),
    [("1e-9999999", "1"), ("9223372036854775807", "9223372036854775807"), ("1e18", "7Ei"),
     ("0.000000001", "1n")],
)  # fmt: skip
def test_extreme_quantities_compare_without_overflow(requests: str, limits: str) -> None:
    task = TaskSpec.model_validate({"resources": {"cpu": {"requests": requests, "limits": limits}}})
    assert task.resources.cpu is not None and task.resources.cpu.limits == limits


def test_requests_equal_to_limits_in_other_units() -> None:
    task = TaskSpec.model_validate({"resources": {"cpu": {"requests": "1.5", "limits": "1500m"}}})
    assert task.resources.cpu is not None and task.resources.cpu.requests == "1.5"


# --- run spec and the whole document ---------------------------------------------------------


def test_run_defaults_and_fields() -> None:
    assert RunSpec() == RunSpec(inputs={}, parameters={}, init_parameters={}, local_execution=False)
    run = RunSpec.model_validate(
        {
            "inputs": {"dataset": "store://proj/dataitem/table/iris:1"},
            "parameters": {"n": 3, "mode": "fast", "nested": {"a": [1, 2]}},
            "init_parameters": {"greeting": "Hi"},
            "local_execution": True,
        }
    )
    assert run.inputs == {"dataset": "store://proj/dataitem/table/iris:1"}
    assert run.parameters == {"n": 3, "mode": "fast", "nested": {"a": [1, 2]}}
    assert run.init_parameters == {"greeting": "Hi"}
    assert run.local_execution is True


@pytest.mark.parametrize(
    ("run", "loc"),
    [
        ({"inputs": {"a": 1}}, ("inputs", "a")),
        ({"parameters": [1, 2]}, ("parameters",)),
        ({"init_parameters": "x"}, ("init_parameters",)),
        ({"local_execution": "maybe"}, ("local_execution",)),
        ({"params": {}}, ("params",)),
    ],
)
def test_bad_run_fields_refused(run: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert [e["loc"] for e in errors_of(RunSpec, run)] == [loc]


def test_document_combines_the_three_specs() -> None:
    doc = RunDocument.model_validate(
        {
            "function": function(),
            "task": {"action": "serve", "replicas": 2},
            "run": {"parameters": {"x": 1}},
        }
    )
    assert doc.function.name == "f"
    assert doc.task.action == "serve" and doc.task.replicas == 2
    assert doc.run.parameters == {"x": 1}
    minimal = RunDocument.model_validate({"function": function()})
    assert minimal.task == TaskSpec() and minimal.run == RunSpec()


def test_document_refuses_unknown_sections_and_needs_a_function() -> None:
    errors = errors_of(RunDocument, {"function": function(), "tasks": {}})
    assert [(e["loc"], e["type"]) for e in errors] == [(("tasks",), "extra_forbidden")]
    errors = errors_of(RunDocument, {"task": {}})
    assert [(e["loc"], e["type"]) for e in errors] == [(("function",), "missing")]

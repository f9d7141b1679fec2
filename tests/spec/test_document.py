"""Reading run spec documents; invalid ones give one line per bad field (DESIGN §2, §10)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from wrapper.errors import ExitCode, SpecError
from wrapper.spec.document import read_document, validate_document
from wrapper.spec.models import PythonVersion, RunDocument

FUNCTION = {"name": "hello", "python_version": "PYTHON3_11", "code": "def handler(event): pass"}

FUNCTION_FIELDS = (
    "name, kind, uuid, description, labels, embedded, project, source, python_version, image, "
    "base_image, requirements, code_src, code, base64, handler, init_function, lang"
)


def problems(document: dict[str, Any]) -> list[str]:
    """The per-field lines of the SpecError an invalid document raises."""
    with pytest.raises(SpecError) as info:
        validate_document(document)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    head, *lines = info.value.message.split("\n")
    assert head == "invalid run spec:"
    assert all(line.startswith("  ") for line in lines)
    return [line[2:] for line in lines]


def spec_error(value: str) -> str:
    with pytest.raises(SpecError) as info:
        read_document(value)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value.message


# --- validate_document -----------------------------------------------------------------------


def test_valid_document_gives_a_run_document() -> None:
    doc = validate_document(
        {"function": FUNCTION, "task": {"action": "serve"}, "run": {"parameters": {"a": 1}}}
    )
    assert isinstance(doc, RunDocument)
    assert doc.function.python_version is PythonVersion.PYTHON3_11
    assert doc.task.action == "serve"
    assert doc.run.parameters == {"a": 1}


def test_python_version_message_is_exact() -> None:
    assert problems({"function": {**FUNCTION, "python_version": "PYTHON3_8"}}) == [
        "function.python_version: 'PYTHON3_8' is not one of "
        "PYTHON3_9, PYTHON3_10, PYTHON3_11, PYTHON3_12, PYTHON3_13"
    ]


def test_one_line_per_bad_field_each_naming_its_path() -> None:
    lines = problems(
        {
            "function": {**FUNCTION, "requirements": ["numpy", "pandas>="]},
            "task": {
                "action": "run",
                "volumes": [
                    {"volume_type": "secret", "name": "ok", "mount_path": "/ok"},
                    {"volume_type": "nfs", "name": "data", "mount_path": "/data"},
                ],
                "resources": {"cpu": {"requests": "lots"}},
            },
            "run": {"local_execution": "maybe"},
        }
    )
    assert len(lines) == 5, lines
    by_path = {line.split(": ", 1)[0]: line for line in lines}
    assert set(by_path) == {
        "function.requirements[1]",
        "task.action",
        "task.volumes[1].volume_type",
        "task.resources.cpu.requests",
        "run.local_execution",
    }
    assert by_path["function.requirements[1]"].startswith(
        "function.requirements[1]: 'pandas>=' is not a PEP 508 requirement"
    )
    assert by_path["task.action"] == "task.action: 'run' is not one of job, serve, build"
    assert by_path["task.volumes[1].volume_type"] == (
        "task.volumes[1].volume_type: 'nfs' is not one of "
        "persistent_volume_claim, empty_dir, ephemeral, shared_volume, config_map, secret"
    )
    assert by_path["task.resources.cpu.requests"].startswith(
        "task.resources.cpu.requests: 'lots' is not a Kubernetes quantity"
    )
    assert "'maybe'" in by_path["run.local_execution"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"function": {**FUNCTION, "kind": "java"}},
            "function.kind: 'java' is not one of python",
        ),
        (
            {"function": FUNCTION, "task": {"service_type": "Ingress"}},
            "task.service_type: 'Ingress' is not one of ClusterIP, NodePort, LoadBalancer",
        ),
        (
            {"function": FUNCTION, "task": {"node_selector": [{"key": "zone"}]}},
            "task.node_selector[0].value: required field is missing",
        ),
        (
            {"function": {k: v for k, v in FUNCTION.items() if k != "name"}},
            "function.name: required field is missing",
        ),
        (
            {"function": {k: v for k, v in FUNCTION.items() if k != "python_version"}},
            "function.python_version: required field is missing",
        ),
        ({"task": {}}, "function: required field is missing"),
        (
            {"function": {**FUNCTION, "uuid": "3a1a3c1e-0000-1000-8000-000000000000"}},
            "function.uuid: '3a1a3c1e-0000-1000-8000-000000000000' is a version 1 UUID; "
            "a UUID4 is required",
        ),
        (
            {"function": {**FUNCTION, "uuid": "nope"}},
            "function.uuid: 'nope' is not a UUID",
        ),
        (
            {"function": {**FUNCTION, "base64": "eA=="}},
            "function.source: give code or base64, not both",
        ),
        (
            {"function": {"name": "f", "python_version": "PYTHON3_11", "handler": "main:h"}},
            "function.source: no code: give one of code, base64 or code_src",
        ),
        (
            {"function": FUNCTION, "task": {"resources": {"mem": {"limits": True}}}},
            "task.resources.mem.limits: must be a Kubernetes quantity such as 500m, 2 or 1Gi",
        ),
    ],
)
def test_single_problem_messages(document: dict[str, Any], expected: str) -> None:
    assert problems(document) == [expected]


def test_requirement_message_names_index_and_pep508() -> None:
    (line,) = problems({"function": {**FUNCTION, "requirements": ["numpy>="]}})
    assert line.startswith("function.requirements[0]: 'numpy>=' is not a PEP 508 requirement: ")
    assert len(line) > len("function.requirements[0]: 'numpy>=' is not a PEP 508 requirement: ")


def test_project_on_a_non_library_function() -> None:
    (line,) = problems({"function": {**FUNCTION, "project": "demo"}})
    assert line.startswith("function: project must not be set on a function")
    assert "library" in line


@pytest.mark.parametrize(
    ("document", "path", "allowed"),
    [
        ({"function": {**FUNCTION, "colour": "blue"}}, "function.colour", FUNCTION_FIELDS),
        ({"function": FUNCTION, "tasks": {}}, "tasks", "function, task, run, nuclio"),
        (
            {"function": FUNCTION, "run": {"params": {}}},
            "run.params",
            "inputs, parameters, init_parameters, local_execution",
        ),
        (
            {"function": FUNCTION, "task": {"resources": {"memory": "1Gi"}}},
            "task.resources.memory",
            "cpu, mem, gpu, disk",
        ),
        (
            {"function": FUNCTION, "task": {"resources": {"cpu": {"request": "1"}}}},
            "task.resources.cpu.request",
            "requests, limits",
        ),
        (
            {
                "function": FUNCTION,
                "task": {
                    "volumes": [{"volume_type": "secret", "name": "s", "mount_path": "/s", "x": 1}]
                },
            },
            "task.volumes[0].x",
            "volume_type, name, mount_path, spec",
        ),
        (
            {
                "function": FUNCTION,
                "task": {"node_selector": [{"key": "a", "value": "b", "op": "In"}]},
            },
            "task.node_selector[0].op",
            "key, value",
        ),
        (
            {
                "function": {
                    "name": "f",
                    "python_version": "PYTHON3_11",
                    "source": {"code": "x", "entry": 1},
                }
            },
            "function.source.entry",
            "source, code, base64, handler, init_function, lang",
        ),
    ],
)
def test_unknown_field_names_the_allowed_ones(
    document: dict[str, Any], path: str, allowed: str
) -> None:
    assert problems(document) == [f"{path}: unknown field (allowed: {allowed})"]


def test_field_given_flat_and_nested_differently() -> None:
    (line,) = problems(
        {"function": {**FUNCTION, "source": {"code": "def handler(event): return 2"}}}
    )
    assert line.startswith("function")
    assert "code is given both flat and under source, with different values" in line


def test_type_errors_say_what_was_given() -> None:
    lines = problems(
        {
            "function": {**FUNCTION, "requirements": "numpy"},
            "task": {"replicas": -1},
        }
    )
    assert len(lines) == 2
    requirements, replicas = sorted(lines)
    assert requirements.startswith("function.requirements: ")
    assert "got str 'numpy'" in requirements
    assert replicas.startswith("task.replicas: ")
    assert "got int -1" in replicas


def test_bad_flat_source_field_names_the_field() -> None:
    """The line names the source field (the code reports it under `function.source.`)."""
    (line,) = problems({"function": {"name": "f", "python_version": "PYTHON3_11", "code_src": 7}})
    path = line.split(": ", 1)[0]
    assert path.startswith("function.") and path.endswith("code_src")
    assert "got int 7" in line


def test_non_mapping_sections() -> None:
    (line,) = problems({"function": "hello.py"})
    assert line.startswith("function: ")
    assert "got str 'hello.py'" in line


def test_non_mapping_source_is_the_only_problem_reported() -> None:
    """`source` given as a string: the flat fields next to it are not unknown fields."""
    lines = problems(
        {
            "function": {
                "name": "f",
                "python_version": "PYTHON3_11",
                "source": "main.py",
                "handler": "main:handler",
            }
        }
    )
    assert len(lines) == 1, lines
    assert lines[0].startswith("function.source: ")
    assert "got str 'main.py'" in lines[0]


def test_long_values_are_shortened_in_messages() -> None:
    (line,) = problems({"function": FUNCTION, "task": {"replicas": "x" * 500}})
    assert line.startswith("task.replicas: ")
    assert "x" * 500 not in line and "..." in line


# --- read_document ---------------------------------------------------------------------------


DOCUMENT = {
    "function": {"name": "hello", "python_version": "PYTHON3_11", "code_src": "main.py"},
    "run": {"parameters": {"n": 1}},
}

YAML_DOCUMENT = textwrap.dedent(
    """\
    # a comment
    function:
      name: hello
      python_version: PYTHON3_11
      code_src: main.py
    run:
      parameters:
        n: 1
    """
)


def test_inline_json() -> None:
    assert read_document(json.dumps(DOCUMENT)) == (DOCUMENT, None)
    assert read_document("  \n" + json.dumps(DOCUMENT)) == (DOCUMENT, None)


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(DOCUMENT)))
    assert read_document("-") == (DOCUMENT, None)
    monkeypatch.setattr("sys.stdin", io.StringIO(YAML_DOCUMENT))
    assert read_document("-") == (DOCUMENT, None)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("spec.json", json.dumps(DOCUMENT, indent=2)),
        ("spec.yaml", YAML_DOCUMENT),
        ("spec.yml", YAML_DOCUMENT),
        ("SPEC.YAML", YAML_DOCUMENT),
        ("spec", YAML_DOCUMENT),
        ("spec", json.dumps(DOCUMENT)),
        ("run.spec", "\n" + json.dumps(DOCUMENT, indent=1)),
    ],
)
def test_files(tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8")
    data, base = read_document(str(folder / name))
    assert data == DOCUMENT
    assert base == folder.resolve()


def test_relative_file_path_gives_an_absolute_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "spec.yaml").write_text(YAML_DOCUMENT)
    monkeypatch.chdir(tmp_path)
    data, base = read_document("sub/spec.yaml")
    assert data == DOCUMENT
    assert base is not None and base.is_absolute()
    assert base == (tmp_path / "sub").resolve()


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = spec_error(str(missing))
    assert message == f"--spec: cannot read {missing}: No such file or directory"


def test_folder_without_a_nuclio_config_is_not_a_spec(tmp_path: Path) -> None:
    message = spec_error(str(tmp_path))
    assert message == f"--spec: {tmp_path} is a folder with no function.yaml in it"


def test_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    assert spec_error(str(path)) == f"--spec: {path} is not UTF-8 text"


def test_invalid_json_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{\n  "function": {\n    "name": "x",,\n  }\n}\n')
    message = spec_error(str(path))
    assert message.startswith(f"spec file {path}: invalid JSON at line 3: ")


def test_yaml_in_a_json_file_is_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(YAML_DOCUMENT)
    assert spec_error(str(path)).startswith(f"spec file {path}: invalid JSON at line 1: ")


def test_invalid_inline_json_names_the_line() -> None:
    message = spec_error('{"function":\n {"name": }}')
    assert message.startswith("inline spec: invalid JSON at line 2: ")


@pytest.mark.parametrize("name", ["spec.yaml", "spec"])
def test_invalid_yaml_names_the_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("function:\n  name: hello\n  code_src: main.py: extra\nrun: {}\n")
    message = spec_error(str(path))
    assert message.startswith(f"spec file {path}: invalid YAML at line 3: ")
    assert "mapping values are not allowed" in message


def test_invalid_yaml_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("function:\n\tname: hello\n"))
    message = spec_error("-")
    assert message.startswith("spec on standard input: invalid YAML at line 2")


def test_invalid_json_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"function": [1,\n\n 2,]}'))
    message = spec_error("-")
    assert message.startswith("spec on standard input: invalid JSON at line 3: ")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- function\n- task\n", "list"),
        ("just text\n", "str"),
        ("42\n", "int"),
        ("", "null"),
        ("# only a comment\n", "null"),
        ("[1, 2]", "list"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    assert spec_error(str(path)) == (
        f"spec file {path}: expected a mapping {{function, task, run}}, got {kind}"
    )


def test_top_level_list_in_json_file_and_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spec.json"
    path.write_text("[]")
    assert spec_error(str(path)).endswith("expected a mapping {function, task, run}, got list")
    monkeypatch.setattr("sys.stdin", io.StringIO('"text"'))
    assert spec_error("-") == (
        "spec on standard input: expected a mapping {function, task, run}, got str"
    )


def test_read_then_validate_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "function.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            function:
              name: hello
              kind: python
              python_version: PYTHON3_12
              source:
                source: main.py
                handler: main:handler
              requirements:
                - requests>=2
            task:
              action: serve
              resources:
                cpu: {requests: 250m, limits: 1}
            run:
              init_parameters: {greeting: Hi}
            """
        )
    )
    data, _ = read_document(str(path))
    doc = validate_document(data)
    assert doc.function.source.code_src == "main.py"
    assert doc.function.source.handler == "main:handler"
    assert doc.function.requirements == ["requests>=2"]
    assert doc.task.resources.cpu.limits == "1"
    assert doc.run.init_parameters == {"greeting": "Hi"}

"""Nuclio function configs read as run documents, field by field (wrapper/spec/nuclio.py).

The configs are written as Nuclio's own examples and reference write them
(hack/examples/python/*/function.yaml, docs/reference/function-configuration).
"""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_config import document, spec_error
from wrapper.spec.models import PythonVersion

CONFIGS = Path(__file__).resolve().parents[1] / "nuclio_configs"
RUNNING = "PYTHON{}_{}".format(*sys.version_info[:2])


def config_file(folder: Path, config: dict[str, Any], name: str = "function.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def read(folder: Path, config: dict[str, Any], *argv: str) -> Any:
    return document(["--spec", str(config_file(folder, config)), *argv])


def test_the_greeter_maps_field_by_field() -> None:
    read_back = document(["--spec", str(CONFIGS / "greeter" / "function.yaml")])
    function, task, section = read_back.function, read_back.task, read_back.nuclio
    assert function.name == "greeter"
    assert function.description.startswith("Greets whoever")
    assert function.labels == ["team=data"]
    assert function.python_version == PythonVersion.PYTHON3_11
    assert function.source.handler == "greeter:handler"
    assert function.source.code_src == str(CONFIGS / "greeter")  # the config's folder
    assert function.requirements == ["tinycrypt", "tinyfmt>=1.0"]
    assert task.instructions == [
        "apt-get update && apt-get install -y --no-install-recommends curl"
    ]
    assert [(e.name, e.value, e.value_from) for e in task.envs] == [
        ("GREETING", "Hello", None),
        ("API_TOKEN", None, {"secretKeyRef": {"name": "greeter-secrets", "key": "token"}}),
    ]
    assert task.replicas == 1
    assert task.resources.cpu.requests == "250m" and task.resources.cpu.limits == "1"
    assert task.resources.mem.requests == "128Mi" and task.resources.mem.limits == "256Mi"
    assert section.workers == 2 and section.max_replicas == 4 and section.target_cpu == 60
    assert section.event_timeout == "30s" and section.annotations == {"owner": "data-team"}
    assert set(section.triggers) == {"web", "nightly"}
    assert section.unmapped == [
        "spec.platform",
        "spec.build.baseImage",
        "spec.triggers.nightly (kind cron: kept for render)",
    ]


def test_metadata_and_spec_alone_without_apiversion_or_kind(tmp_path: Path) -> None:
    """Nuclio's sentiments example has neither apiVersion nor kind."""
    read_back = read(tmp_path, {"spec": {"runtime": "python", "handler": "sentiments:handler"}})
    assert read_back.function.source.handler == "sentiments:handler"
    assert read_back.function.name == tmp_path.name  # no metadata.name: the folder's
    assert read_back.nuclio.unmapped == []


def test_a_bare_python_runtime_is_the_running_interpreters(tmp_path: Path) -> None:
    assert read(tmp_path, {"spec": {"runtime": "python"}}).function.python_version == RUNNING
    assert read(tmp_path, {"spec": {}}).function.python_version == RUNNING


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ("golang", "spec.runtime 'golang': fn-wrapper runs Python functions"),
        ("python:3.8", "spec.runtime 'python:3.8' is not one of python, python:3.9, "),
        ("python:2.7", "spec.runtime 'python:2.7' is not one of"),
    ],
)
def test_other_runtimes_are_refused_by_name(tmp_path: Path, runtime: str, message: str) -> None:
    path = config_file(tmp_path, {"spec": {"runtime": runtime}})
    assert message in spec_error(["--spec", str(path)])


def test_keys_match_in_any_case_as_gos_json_decoding_does(tmp_path: Path) -> None:
    config = {"Spec": {"Handler": "a:b", "disableDefaultHttpTrigger": True, "MINREPLICAS": 2}}
    read_back = read(tmp_path, config)
    assert read_back.function.source.handler == "a:b" and read_back.task.replicas == 2
    assert read_back.nuclio.disable_default_http_trigger is True


def test_flags_and_twins_still_win(tmp_path: Path) -> None:
    path = str(config_file(tmp_path, {"spec": {"handler": "a:b", "runtime": "python:3.12"}}))
    flagged = document(["--spec", path, "--handler", "c:d", "--python-version", "PYTHON3_10"])
    assert flagged.function.source.handler == "c:d"
    assert flagged.function.python_version == PythonVersion.PYTHON3_10
    twin = document(["--spec", path], {"FN_WRAPPER_HANDLER": "e:f"})
    assert twin.function.source.handler == "e:f"


def test_a_folder_holding_a_config_is_a_spec(tmp_path: Path) -> None:
    config_file(tmp_path, {"spec": {"handler": "main:go"}})
    assert document(["--spec", str(tmp_path)]).function.source.handler == "main:go"


def test_a_local_code_src_holding_a_config_is_read_as_the_spec(tmp_path: Path) -> None:
    shutil.copytree(CONFIGS / "greeter", tmp_path / "greeter")
    read_back = document(["--code-src", str(tmp_path / "greeter")])
    assert read_back.function.name == "greeter"
    assert read_back.function.source.handler == "greeter:handler"
    assert read_back.function.source.code_src == str(tmp_path / "greeter")
    assert read_back.function.requirements == ["tinycrypt", "tinyfmt>=1.0"]
    assert read_back.nuclio.workers == 2


def test_the_inline_block_of_a_source_file(tmp_path: Path) -> None:
    source = str(CONFIGS / "reverse.py")
    for argv in (["--spec", source], ["--code-src", source]):
        read_back = document(argv)
        assert read_back.function.name == "reverser"
        assert read_back.function.source.handler == "reverse:reverse"
        assert read_back.function.source.code_src == str(CONFIGS / "reverse.py")  # the file alone
        assert read_back.function.python_version == RUNNING
        assert read_back.function.requirements == ["tinycrypt"]
        assert [(e.name, e.value) for e in read_back.task.envs] == [("SUFFIX", "!")]


def test_a_source_file_without_a_block_is_plain_code(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("def handler(context, event):\n    return 1\n")
    assert document(["--code-src", str(tmp_path / "plain.py")]).nuclio is None
    message = spec_error(["--spec", str(tmp_path / "plain.py")])
    assert message == f"--spec: {tmp_path / 'plain.py'} has no `# @nuclio.configure` block"


def test_a_malformed_inline_block_names_its_line(tmp_path: Path) -> None:
    """Nuclio's own invalid-inline-config case: `runtime:python` with no space."""
    source = tmp_path / "parser.py"
    source.write_text(
        "# @nuclio.configure\n#\n# function.yaml:\n#   spec:\n#     runtime:python\n"
        "#     handler: parser:handler\n#\n\ndef handler(context, event):\n    return 1\n"
    )
    message = spec_error(["--code-src", str(source)])
    assert message.startswith(f"{source}: the @nuclio.configure block (line ")
    assert "Traceback" not in message


def test_function_source_code_is_written_as_the_handlers_module(tmp_path: Path) -> None:
    code = base64.b64encode(b"def handler(context, event):\n    return 'inline'\n").decode()
    config = {"spec": {"handler": "app:handler", "build": {"functionSourceCode": code}}}
    read_back = read(tmp_path, config)
    assert read_back.function.source.base64 == code
    assert read_back.function.source.code_src == "app.py"  # where the handler imports it from
    assert read_back.nuclio.code_entry == {"functionSourceCode": code}


@pytest.mark.parametrize(
    ("build", "code_src", "unmapped"),
    [
        (
            {"codeEntryType": "github", "path": "https://github.com/org/repo",
             "codeEntryAttributes": {"branch": "main", "workDir": "/functions/hello"}},
            "git+https://github.com/org/repo#main:functions/hello", [],
        ),
        (
            {"codeEntryType": "git", "path": "https://git.example.com/org/repo.git",
             "codeEntryAttributes": {"tag": "v1.2", "branch": "main"}},
            "git+https://git.example.com/org/repo.git#v1.2", [],
        ),
        (
            {"codeEntryType": "archive", "path": "https://example.com/fn.tar.gz"},
            "https://example.com/fn.tar.gz", [],
        ),
        (
            {"codeEntryType": "archive", "path": "https://example.com/download?id=7",
             "codeEntryAttributes": {"workDir": "src"}},
            "zip+https://example.com/download?id=7", ["spec.build.codeEntryAttributes.workDir"],
        ),
        (
            {"codeEntryType": "s3", "codeEntryAttributes": {
                "s3Bucket": "code", "s3ItemKey": "fn/hello.zip", "s3Region": "eu-west-1",
                "s3AccessKeyId": "AKIA0000", "s3SecretAccessKey": "very-secret"}},
            "s3://code/fn/hello.zip",
            ["spec.build.codeEntryAttributes.s3AccessKeyId (a credential: dropped)",
             "spec.build.codeEntryAttributes.s3SecretAccessKey (a credential: dropped)",
             "spec.build.codeEntryAttributes.s3Region"],
        ),
        ({"path": "src"}, "{folder}/src", []),
    ],
)  # fmt: skip
def test_code_entries_become_code_srcs(
    tmp_path: Path, build: dict[str, Any], code_src: str, unmapped: list[str]
) -> None:
    read_back = read(tmp_path, {"spec": {"handler": "hello:handler", "build": build}})
    assert read_back.function.source.code_src == code_src.format(folder=tmp_path)
    assert read_back.nuclio.unmapped == unmapped
    assert "very-secret" not in read_back.model_dump_json()  # credentials are never kept


@pytest.mark.parametrize(
    ("commands", "requirements", "instructions"),
    [
        (["pip install requests vaderSentiment"], ["requests", "vaderSentiment"], []),
        (["pip install -U --no-cache-dir 'numpy>=1.26' pandas[parquet]==2.2"],
         ["numpy>=1.26", "pandas[parquet]==2.2"], []),
        (["python -m pip install six"], ["six"], []),
        # anything else is a build instruction, whole
        (["pip install -r requirements.txt"], [], ["pip install -r requirements.txt"]),
        (["pip install --index-url https://mirror/simple six"], [],
         ["pip install --index-url https://mirror/simple six"]),
        (["pip install six && rm -rf /tmp/x"], [], ["pip install six && rm -rf /tmp/x"]),
        (["pip install numpy>=1"], [], ["pip install numpy>=1"]),  # a shell redirection
        (["apk --update --no-cache add curl"], [], ["apk --update --no-cache add curl"]),
        # a line ending with a backslash goes on, as Nuclio joins them
        (["apt-get update && \\", "apt-get install -y wget"], [],
         ["apt-get update && apt-get install -y wget"]),
    ],
)  # fmt: skip
def test_build_commands(
    tmp_path: Path, commands: list[str], requirements: list[str], instructions: list[str]
) -> None:
    read_back = read(tmp_path, {"spec": {"build": {"commands": commands}}})
    assert read_back.function.requirements == requirements
    assert read_back.task.instructions == instructions


def test_directives_are_read_when_there_are_no_commands(tmp_path: Path) -> None:
    directives = {"preCopy": [{"kind": "USER", "value": "root"},
                              {"kind": "RUN", "value": "pip install six"},
                              {"kind": "ENV", "value": "A=1"}]}  # fmt: skip
    read_back = read(tmp_path, {"spec": {"build": {"directives": directives}}})
    assert read_back.function.requirements == ["six"]
    assert read_back.nuclio.unmapped == ["spec.build.directives.preCopy[2] (ENV)"]


def test_replicas_fixes_both_bounds(tmp_path: Path) -> None:
    read_back = read(tmp_path, {"spec": {"replicas": 3, "minReplicas": 1, "maxReplicas": 9}})
    assert read_back.task.replicas == 3 and read_back.nuclio.max_replicas == 3


def test_placement_fields_map_onto_the_task(tmp_path: Path) -> None:
    toleration = {"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    config = {
        "spec": {
            "nodeSelector": {"pool": "gpu", "empty": ""},
            "tolerations": [toleration],
            "serviceType": "NodePort",
            "resources": {"limits": {"nvidia.com/gpu": 1}},
        }
    }
    task = read(tmp_path, config).task
    assert [(n.key, n.value) for n in task.node_selector] == [("pool", "gpu")]  # empty: dropped
    assert task.tolerations[0].key == "pool" and task.service_type == "NodePort"
    assert task.resources.gpu.limits == "1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"env": "A=1"}, "spec.env: expected a list of {name, value} items"),
        ({"env": [{"value": "x"}]}, "spec.env[0]: expected {name, value} or {name, valueFrom}"),
        ({"minReplicas": "two"}, "spec.minReplicas: expected a whole number, got 'two'"),
        ({"eventTimeout": "soon"}, "spec.eventTimeout 'soon' is not a duration"),
        ({"triggers": {"web": {"kind": "http", "numWorkers": -1}}},
         "spec.triggers.web.numWorkers: expected 1 or more"),
        ({"build": {"commands": "pip install six"}}, "spec.build.commands: expected a list"),
        ({"build": {"codeEntryType": "s3"}}, "codeEntryType s3 needs s3Bucket and s3ItemKey"),
    ],
)  # fmt: skip
def test_malformed_fields_are_named_by_their_nuclio_path(
    tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    path = config_file(tmp_path, {"spec": spec})
    error = spec_error(["--spec", str(path)])
    assert error.startswith("Nuclio config: ") and message in error


def test_a_run_document_is_never_taken_for_a_config(tmp_path: Path) -> None:
    spec = {"function": {"name": "f", "code": "x = 1", "python_version": RUNNING}, "spec": {}}
    message = spec_error(["--spec", str(config_file(tmp_path, spec, "spec.yaml"))])
    assert "spec: unknown field" in message

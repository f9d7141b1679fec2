"""Options, environment twins and the spec document assembled per DESIGN §10 precedence."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import pytest

from wrapper.cli import invoke
from wrapper.config import build_document
from wrapper.errors import ExitCode, SpecError
from wrapper.settings import (
    COMMON_OPTIONS,
    SOURCE_OPTIONS,
    Option,
    Settings,
    boolean,
    json_object,
    parse_plain,
    resolve,
)
from wrapper.spec.models import PythonVersion

OPTIONS = (*SOURCE_OPTIONS, *COMMON_OPTIONS)
INVOKE_OPTIONS = (*invoke.OPTIONS, *COMMON_OPTIONS)


def parser_for(options: Sequence[Option] = OPTIONS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    for option in options:
        option.add_to(parser)
    return parser


def settings(
    argv: Sequence[str] = (),
    environ: Optional[Mapping[str, str]] = None,
    options: Sequence[Option] = OPTIONS,
) -> Settings:
    args = parser_for(options).parse_args(list(argv))
    return resolve(vars(args), options, dict(environ or {}))


def document(argv: Sequence[str] = (), environ: Optional[Mapping[str, str]] = None) -> Any:
    return build_document(settings(argv, environ))


def spec_error(argv: Sequence[str] = (), environ: Optional[Mapping[str, str]] = None) -> str:
    with pytest.raises(SpecError) as info:
        document(argv, environ)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value.message


SPEC = {
    "function": {
        "name": "from-doc",
        "python_version": "PYTHON3_10",
        "code_src": "doc_code.py",
        "handler": "doc_module:doc_handler",
        "init_function": "doc_init",
        "requirements": ["doc-req"],
    },
    "task": {"action": "serve"},
    "run": {"parameters": {"a": 1, "b": 2}, "init_parameters": {"x": 1, "y": 2}},
}
INLINE_SPEC = json.dumps(SPEC)


# --- Option and resolve ----------------------------------------------------------------------


def test_option_dest_and_env_twin() -> None:
    option = Option("--code-src", "where")
    assert option.dest == "code_src"
    assert option.env == "FN_WRAPPER_CODE_SRC"
    assert Option("--init-parameters", "x").env == "FN_WRAPPER_INIT_PARAMETERS"


def test_every_option_has_a_distinct_twin() -> None:
    envs = [o.env for o in OPTIONS]
    assert len(set(envs)) == len(envs)
    assert all(
        e == "FN_WRAPPER_" + o.flag[2:].replace("-", "_").upper() for o, e in zip(OPTIONS, envs)
    )


def test_help_names_the_twin_and_default() -> None:
    text = " ".join(parser_for().format_help().split())
    assert "[env FN_WRAPPER_CODE_SRC]" in text
    assert "[env FN_WRAPPER_REQUIREMENTS (a JSON array)]" in text
    assert "[env FN_WRAPPER_LOG_LEVEL; default: info]" in text


def test_layers_flag_env_default() -> None:
    result = settings(
        ["--handler", "flag_h"],
        {"FN_WRAPPER_HANDLER": "env_h", "FN_WRAPPER_NAME": "env_name"},
    )
    assert (result.handler, result.layers["handler"]) == ("flag_h", "flag")
    assert (result.name, result.layers["name"]) == ("env_name", "env")
    assert (result.log_level, result.layers["log_level"]) == ("info", "default")
    assert (result.code, result.layers["code"]) == (None, "default")
    assert set(result.values) == {o.dest for o in OPTIONS}
    with pytest.raises(AttributeError):
        _ = result.no_such_setting


def test_env_values_are_parsed_like_flags() -> None:
    result = settings(
        [],
        {
            "FN_WRAPPER_PARAMETERS": '{"n": 3, "s": "x"}',
            "FN_WRAPPER_REQUIREMENTS": '["numpy", "pandas>=2"]',
            "FN_WRAPPER_DEBUG": "yes",
            "FN_WRAPPER_LOG_FORMAT": "json",
        },
    )
    assert result.parameters == {"n": 3, "s": "x"}
    assert result.requirements == ["numpy", "pandas>=2"]
    assert result.debug is True
    assert result.log_format == "json"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("TRUE", True),
        ("on", True),
        ("Yes", True),
        ("0", False),
        ("off", False),
        ("no", False),
    ],
)
def test_switch_env_values(text: str, value: bool) -> None:
    assert boolean(text) is value
    assert settings([], {"FN_WRAPPER_DEBUG": text}).debug is value


def test_switch_flag_beats_env() -> None:
    assert settings(["--no-debug"], {"FN_WRAPPER_DEBUG": "1"}).debug is False
    assert settings(["--debug"], {"FN_WRAPPER_DEBUG": "0"}).debug is True
    assert settings([], {}).debug is None


def test_repeated_flag_collects_a_list_and_beats_env() -> None:
    result = settings(
        ["--requirements", "a", "--requirements", "b"], {"FN_WRAPPER_REQUIREMENTS": '["c"]'}
    )
    assert result.requirements == ["a", "b"]


@pytest.mark.parametrize(
    ("variable", "text", "fragment"),
    [
        ("FN_WRAPPER_PARAMETERS", "not json", "not valid JSON"),
        ("FN_WRAPPER_PARAMETERS", "[1, 2]", "expected a JSON object, got list"),
        ("FN_WRAPPER_INIT_PARAMETERS", '"text"', "expected a JSON object, got str"),
        ("FN_WRAPPER_REQUIREMENTS", '"numpy"', "expected a JSON array"),
        # Not JSON at all: the message should still say a JSON array is expected.
        ("FN_WRAPPER_REQUIREMENTS", "numpy", "JSON"),
        ("FN_WRAPPER_HEADER", "X-A: 1", "JSON"),
        ("FN_WRAPPER_DEBUG", "maybe", "expected true or false, got 'maybe'"),
        ("FN_WRAPPER_LOG_LEVEL", "loud", "'loud' is not one of debug, info, warning, error"),
    ],
)
def test_bad_env_value_is_a_spec_error_naming_the_variable(
    variable: str, text: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        settings([], {variable: text}, options=INVOKE_OPTIONS)
    assert info.value.message.startswith(f"{variable}: ")
    assert fragment in info.value.message
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_empty_env_twin_counts_as_unset() -> None:
    """An empty variable (as templates often leave them) is not a value: the default holds."""
    result = settings([], {"FN_WRAPPER_HANDLER": "", "FN_WRAPPER_DEBUG": ""})
    assert (result.handler, result.layers["handler"]) == (None, "default")
    assert (result.debug, result.layers["debug"]) == (None, "default")


def test_bad_env_value_ignored_when_the_flag_is_given() -> None:
    assert settings(["--handler", "m:f"], {"FN_WRAPPER_HANDLER": ""}).handler == "m:f"
    assert settings(["--log-level", "debug"], {"FN_WRAPPER_LOG_LEVEL": "loud"}).log_level == "debug"


def test_bad_env_object_is_an_error_even_with_the_flag_since_they_merge() -> None:
    with pytest.raises(SpecError, match=r"^FN_WRAPPER_PARAMETERS: not valid JSON"):
        settings(["--parameters", "{}"], {"FN_WRAPPER_PARAMETERS": "nope"})


@pytest.mark.parametrize(
    "argv",
    [["--parameters", "nope"], ["--init-parameters", "[1]"], ["--log-level", "loud"]],
)
def test_bad_flag_value_is_an_argparse_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parser_for().parse_args(argv)
    assert info.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_json_object_parser() -> None:
    assert json_object('{"a": [1]}') == {"a": [1]}
    with pytest.raises(ValueError, match="expected a JSON object"):
        json_object("3")


# --- precedence per field: flags > env > document > defaults ---------------------------------


@pytest.mark.parametrize(
    ("field", "flag", "env", "read"),
    [
        ("name", "--name", "FN_WRAPPER_NAME", lambda d: d.function.name),
        (
            "python_version",
            "--python-version",
            "FN_WRAPPER_PYTHON_VERSION",
            lambda d: d.function.python_version.value,
        ),
        ("handler", "--handler", "FN_WRAPPER_HANDLER", lambda d: d.function.source.handler),
        (
            "init_function",
            "--init-function",
            "FN_WRAPPER_INIT_FUNCTION",
            lambda d: d.function.source.init_function,
        ),
    ],
)
def test_scalar_precedence(field: str, flag: str, env: str, read: Any) -> None:
    values = {
        "name": ("flag-name", "env-name"),
        "python_version": ("PYTHON3_13", "PYTHON3_12"),
        "handler": ("flag_mod:h", "env_mod:h"),
        "init_function": ("flag_init", "env_init"),
    }[field]
    doc_value = read(document(["--spec", INLINE_SPEC]))
    assert doc_value not in values
    assert read(document(["--spec", INLINE_SPEC], {env: values[1]})) == values[1]
    assert read(document(["--spec", INLINE_SPEC, flag, values[0]], {env: values[1]})) == values[0]
    assert read(document(["--spec", INLINE_SPEC, flag, values[0]])) == values[0]


def test_document_values_used_when_nothing_overrides() -> None:
    doc = document(["--spec", INLINE_SPEC])
    assert doc.function.name == "from-doc"
    assert doc.function.python_version is PythonVersion.PYTHON3_10
    assert doc.function.source.code_src == "doc_code.py"
    assert doc.function.source.handler == "doc_module:doc_handler"
    assert doc.function.source.init_function == "doc_init"
    assert doc.function.requirements == ["doc-req"]
    assert doc.task.action == "serve"
    assert doc.run.parameters == {"a": 1, "b": 2}
    assert doc.run.init_parameters == {"x": 1, "y": 2}


def test_spec_from_env_twin_and_flag_wins() -> None:
    other = json.dumps({**SPEC, "function": {**SPEC["function"], "name": "other-doc"}})
    assert document([], {"FN_WRAPPER_SPEC": INLINE_SPEC}).function.name == "from-doc"
    assert (
        document(["--spec", other], {"FN_WRAPPER_SPEC": INLINE_SPEC}).function.name == "other-doc"
    )


def test_requirements_flags_and_env_replace_the_documents_list() -> None:
    assert document(
        ["--spec", INLINE_SPEC, "--requirements", "r1", "--requirements", "r2"]
    ).function.requirements == [
        "r1",
        "r2",
    ]
    doc = document(["--spec", INLINE_SPEC], {"FN_WRAPPER_REQUIREMENTS": '["a", "b"]'})
    assert doc.function.requirements == ["a", "b"]
    doc = document(
        ["--spec", INLINE_SPEC, "--requirements", "flag"], {"FN_WRAPPER_REQUIREMENTS": '["env"]'}
    )
    assert doc.function.requirements == ["flag"]


def test_bad_values_from_flags_are_validated_with_the_document() -> None:
    message = spec_error(["--spec", INLINE_SPEC, "--python-version", "PYTHON3_8"])
    assert "function.python_version: 'PYTHON3_8' is not one of PYTHON3_9" in message
    message = spec_error(["--spec", INLINE_SPEC, "--requirements", "numpy>="])
    assert "function.requirements[0]: 'numpy>=' is not a PEP 508 requirement" in message


# --- source replacement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--code", "def handler(event): pass", "code"),
        ("--base64", "eCA9IDEK", "base64"),
        ("--code-src", "other.py", "code_src"),
    ],
)
def test_source_flag_replaces_the_whole_source(flag: str, value: str, field: str) -> None:
    source = document(["--spec", INLINE_SPEC, flag, value]).function.source
    assert getattr(source, field) == value
    others = {"code", "base64", "code_src"} - {field}
    assert all(getattr(source, name) is None for name in others)
    assert source.handler == "handler"  # the document's handler went with its source
    assert source.init_function is None


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("FN_WRAPPER_CODE", "def handler(event): pass", "code"),
        ("FN_WRAPPER_BASE64", "eCA9IDEK", "base64"),
        ("FN_WRAPPER_CODE_SRC", "other.py", "code_src"),
    ],
)
def test_source_env_twin_replaces_the_whole_source(variable: str, value: str, field: str) -> None:
    source = document(["--spec", INLINE_SPEC], {variable: value}).function.source
    assert getattr(source, field) == value
    assert source.code_src == (value if field == "code_src" else None)
    assert source.handler == "handler"
    assert source.init_function is None


def test_handler_from_flag_or_env_survives_source_replacement() -> None:
    source = document(
        ["--spec", INLINE_SPEC, "--code-src", "x.py", "--handler", "x:h"]
    ).function.source
    assert (source.code_src, source.handler) == ("x.py", "x:h")
    source = document(
        ["--spec", INLINE_SPEC, "--code", "pass"],
        {"FN_WRAPPER_HANDLER": "env_h", "FN_WRAPPER_INIT_FUNCTION": "env_init"},
    ).function.source
    assert (source.code, source.handler, source.init_function) == ("pass", "env_h", "env_init")


def test_handler_alone_keeps_the_documents_source() -> None:
    source = document(["--spec", INLINE_SPEC, "--handler", "mine:h"]).function.source
    assert source.code_src == "doc_code.py"
    assert source.handler == "mine:h"
    assert source.init_function == "doc_init"


def test_flag_code_beats_env_code() -> None:
    source = document(
        ["--spec", INLINE_SPEC, "--code-src", "flag.py"],
        {"FN_WRAPPER_CODE": "env = 1", "FN_WRAPPER_BASE64": "eA=="},
    ).function.source
    assert source.code_src == "flag.py"
    assert source.code is None and source.base64 is None
    source = document(["--code", "flag = 1"], {"FN_WRAPPER_CODE": "env = 1"}).function.source
    assert source.code == "flag = 1"


def test_env_code_beats_document_code() -> None:
    spec = json.dumps(
        {"function": {"name": "f", "python_version": "PYTHON3_11", "code": "doc = 1"}}
    )
    source = document(["--spec", spec], {"FN_WRAPPER_CODE": "env = 1"}).function.source
    assert source.code == "env = 1"


def test_inline_code_with_a_code_src_path_from_flags() -> None:
    """Code and code_src given together: the path names the file the code is written to."""
    source = document(["--code", "x = 1", "--code-src", "pkg/job.py"]).function.source
    assert (source.code, source.code_src) == ("x = 1", "pkg/job.py")


def test_both_inline_kinds_from_flags_is_a_spec_error() -> None:
    message = spec_error(["--code", "x = 1", "--base64", "eA=="])
    assert "function.source: give code or base64, not both" in message


def test_no_source_at_all_is_a_spec_error() -> None:
    assert "no code: give one of code, base64 or code_src" in spec_error([])


def test_flat_and_nested_conflict_in_the_document_is_a_spec_error() -> None:
    spec = json.dumps(
        {
            "function": {
                "name": "f",
                "python_version": "PYTHON3_11",
                "code_src": "a.py",
                "source": {"source": "b.py"},
            }
        }
    )
    message = spec_error(["--spec", spec, "--handler", "h"])
    assert "code_src is given both flat and under source" in message


# --- dict flags merge key by key -------------------------------------------------------------


def test_parameters_merge_over_the_document() -> None:
    run = document(["--spec", INLINE_SPEC, "--parameters", '{"b": 20, "c": 30}']).run
    assert run.parameters == {"a": 1, "b": 20, "c": 30}
    assert run.init_parameters == {"x": 1, "y": 2}


def test_init_parameters_merge_over_the_document() -> None:
    run = document(
        ["--spec", INLINE_SPEC], {"FN_WRAPPER_INIT_PARAMETERS": '{"y": "env", "z": 3}'}
    ).run
    assert run.init_parameters == {"x": 1, "y": "env", "z": 3}
    assert run.parameters == {"a": 1, "b": 2}


def test_parameters_merge_key_by_key_across_document_env_and_flag() -> None:
    run = document(
        ["--spec", INLINE_SPEC, "--parameters", '{"b": "flag"}'],
        {"FN_WRAPPER_PARAMETERS": '{"b": "env", "c": "env"}'},
    ).run
    assert run.parameters == {"a": 1, "b": "flag", "c": "env"}


def test_parameters_without_a_document() -> None:
    doc = document(["--code", "x = 1", "--parameters", '{"n": [1, 2]}'])
    assert doc.run.parameters == {"n": [1, 2]}
    assert doc.run.init_parameters == {}


# --- defaults without a document -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code_src", "name"),
    [
        ("hello.py", "hello"),
        ("some/dir/my_func.py", "my_func"),
        ("project/src/", "src"),
        ("file:///srv/code/greeter.py", "greeter"),
    ],
)
def test_name_defaults_to_the_code_src_stem(code_src: str, name: str) -> None:
    assert document(["--code-src", code_src]).function.name == name


def test_name_defaults_without_a_code_src() -> None:
    doc = document(["--code", "x = 1"])
    assert doc.function.name
    assert doc.function.name == "function"


def test_name_and_version_flags_win_over_the_defaults() -> None:
    doc = document(["--code-src", "a.py", "--name", "given", "--python-version", "PYTHON3_9"])
    assert doc.function.name == "given"
    assert doc.function.python_version is PythonVersion.PYTHON3_9


def test_python_version_defaults_to_the_running_interpreter() -> None:
    running = PythonVersion.running()
    if running is None:
        pytest.skip("this interpreter's version is not a supported python_version")
    assert document(["--code-src", "a.py"]).function.python_version is running
    assert (
        document(["--code", "x"], {"FN_WRAPPER_CODE_SRC": "b.py"}).function.python_version
        is running
    )


def test_task_and_run_only_document_still_gets_function_defaults() -> None:
    spec = json.dumps({"task": {"action": "serve"}, "run": {"parameters": {"p": 1}}})
    doc = document(["--spec", spec, "--code-src", "svc.py"])
    assert doc.function.name == "svc"
    assert doc.task.action == "serve"
    assert doc.run.parameters == {"p": 1}


def test_a_document_function_gets_no_defaults() -> None:
    spec = json.dumps({"function": {"code_src": "a.py"}})
    message = spec_error(["--spec", spec])
    assert "function.name: required field is missing" in message
    assert "function.python_version: required field is missing" in message


# --- relative code_src in a spec file --------------------------------------------------------


def write_spec(folder: Path, function: dict[str, Any], name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        json.dumps({"function": {"name": "f", "python_version": "PYTHON3_11", **function}})
    )
    return path


@pytest.mark.parametrize("form", ["flat", "nested"])
def test_relative_code_src_in_a_spec_file_starts_at_the_file(tmp_path: Path, form: str) -> None:
    source = (
        {"code_src": "src/main.py"} if form == "flat" else {"source": {"source": "src/main.py"}}
    )
    path = write_spec(tmp_path / "specs", source)
    doc = document(["--spec", str(path)])
    assert doc.function.source.code_src == str((tmp_path / "specs").resolve() / "src/main.py")


def test_relative_spec_path_resolves_code_src_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(tmp_path / "specs", {"code_src": "main.py"})
    monkeypatch.chdir(tmp_path)
    doc = document(["--spec", "specs/spec.yaml"])
    assert doc.function.source.code_src == str((tmp_path / "specs" / "main.py").resolve())


def test_spec_file_from_env_twin_also_resolves_code_src(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "specs", {"code_src": "main.py"})
    doc = document([], {"FN_WRAPPER_SPEC": str(path)})
    assert doc.function.source.code_src == str((tmp_path / "specs").resolve() / "main.py")


@pytest.mark.parametrize(
    "code_src",
    ["/abs/path/main.py", "file:///abs/main.py", "https://example.com/main.py", "s3://b/k.py"],
)
def test_absolute_and_remote_code_src_kept_as_written(tmp_path: Path, code_src: str) -> None:
    path = write_spec(tmp_path, {"code_src": code_src})
    assert document(["--spec", str(path)]).function.source.code_src == code_src


@pytest.mark.parametrize(
    "inline", [{"code": "x = 1"}, {"base64": "eCA9IDEK"}], ids=["code", "base64"]
)
def test_code_src_next_to_inline_code_is_not_resolved(
    tmp_path: Path, inline: dict[str, str]
) -> None:
    path = write_spec(tmp_path, {"source": {"source": "pkg/job.py", **inline}})
    assert document(["--spec", str(path)]).function.source.code_src == "pkg/job.py"


def test_code_src_from_flag_or_env_is_not_resolved_against_the_spec_file(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "specs", {"code_src": "main.py"})
    assert (
        document(["--spec", str(path), "--code-src", "mine.py"]).function.source.code_src
        == "mine.py"
    )
    doc = document(["--spec", str(path)], {"FN_WRAPPER_CODE_SRC": "env.py"})
    assert doc.function.source.code_src == "env.py"


def test_handler_flag_keeps_the_resolved_document_code_src(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "specs", {"code_src": "main.py"})
    source = document(["--spec", str(path), "--handler", "main:other"]).function.source
    assert source.code_src == str((tmp_path / "specs").resolve() / "main.py")
    assert source.handler == "main:other"


def test_inline_and_stdin_specs_keep_relative_code_src(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.dumps(
        {"function": {"name": "f", "python_version": "PYTHON3_11", "code_src": "rel.py"}}
    )
    assert document(["--spec", spec]).function.source.code_src == "rel.py"
    monkeypatch.setattr("sys.stdin", io.StringIO(spec))
    assert document(["--spec", "-"]).function.source.code_src == "rel.py"


def test_spec_read_errors_surface_from_build_document(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert spec_error(["--spec", str(missing)]).startswith(f"--spec: cannot read {missing}")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n\n,}")
    assert spec_error(["--spec", str(bad)]).startswith(f"spec file {bad}: invalid JSON at line 3")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--code-src", "fn.py", "--handler", "main:handler"],
        ["--debug", "--log-level", "debug", "--max-download-size", "1MiB", "--debug"],
        ["--parameters", '{"a": 1}', "--path", "/p?q=1"],
    ],
)
def test_a_plain_command_line_parses_as_argparse_would(argv: list[str]) -> None:
    expected = vars(parser_for(INVOKE_OPTIONS).parse_args(argv))
    given = parse_plain(argv, INVOKE_OPTIONS)
    assert given is not None
    assert {k: v for k, v in expected.items() if v is not None} == given


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--handler=main:handler"],
        ["--no-debug"],
        ["--header", "A: 1"],  # repeatable
        ["--handler"],  # no value
        ["--handler", "--debug"],
        ["--log-level", "loud"],  # not a choice
        ["--max-download-size", "lots"],  # not a size
        ["--unknown", "x"],
        ["stray"],
    ],
)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert parse_plain(argv, INVOKE_OPTIONS) is None

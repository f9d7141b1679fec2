"""Secrets kept out of every log line: one list of values, masked before any encoding."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from wrapper.logs import configure_logging
from wrapper.nuclio.logs import ProcessorLogHandler
from wrapper.secrets import (
    CREDENTIAL_VARIABLES,
    SECRET_VARIABLES_SETTING,
    Redaction,
    mask_url_credentials,
    secret_values,
)

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def test_the_credential_variables_and_the_operators_names_are_secret() -> None:
    environ = {
        "GIT_TOKEN": "ghp_token",
        "GIT_USERNAME": "robot-user",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_SESSION_TOKEN": "aws-session",
        "GIT_PASSWORD": "abc",  # too short to mask safely
        "DB_PASSWORD": "db-password",
        "OTHER": "not-a-secret",
        SECRET_VARIABLES_SETTING: " DB_PASSWORD , MISSING,",
    }
    assert set(secret_values(environ)) == {
        "ghp_token",
        "robot-user",
        "aws-secret",
        "aws-session",
        "db-password",
    }
    assert "GIT_PASSWORD" in CREDENTIAL_VARIABLES


def test_longer_secrets_are_masked_first_and_a_mask_never_rebuilds_one() -> None:
    redaction = Redaction(["abcd", "abcdef", "a***"])
    assert redaction.text("x abcdef abcd y") == "x *** *** y"
    assert redaction.text("aa***") == "***"  # masking "a***" once would leave "a***"


def test_credentials_in_urls_are_masked_inside_longer_text() -> None:
    text = "clone https://user:p@ss@git.example/org/repo.git failed; see https://ok.example/a@b"
    assert mask_url_credentials(text) == (
        "clone https://***@git.example/org/repo.git failed; see https://ok.example/a@b"
    )
    assert Redaction([]).text("s3://KEY:SECRET@host/b") == "s3://***@host/b"
    assert mask_url_credentials("mail me at ada@example.org") == "mail me at ada@example.org"


def test_nested_values_are_masked_and_made_json_ready() -> None:
    class Holder:
        def __repr__(self) -> str:
            return "<Holder s3cr3t!>"

    redaction = Redaction(["s3cr3t!"])
    value = {"a": ["s3cr3t!", ("x s3cr3t!", 1)], "s3cr3t!": {"b": Holder()}, 2: None}
    assert redaction.value(value) == {
        "a": ["***", ["x ***", 1]],
        "***": {"b": "<Holder ***>"},
        2: None,
    }


# --- the property: no secret in clear, whatever its characters, in any log line --------

SECRETS = st.text(min_size=4, max_size=20)
"""Any characters: quotes, backslashes, control characters, non-ASCII."""


class Raised(Exception):
    pass


def _log_everywhere(secret: str) -> None:
    log = logging.getLogger("function")
    log.info("token %s end", secret, extra={"with": {"v": secret, "nested": [{"k": secret}]}})
    try:
        raise Raised(f"failed with {secret}")
    except Raised:
        log.exception("failed")


def _fixed_time(record: logging.LogRecord) -> bool:
    record.created, record.msecs = 0.0, 0.0
    return True


def _stream_lines(log_format: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", log_format, stream)
    logging.getLogger().handlers[0].addFilter(_fixed_time)
    return stream


def _l_lines() -> list[bytes]:
    sent: list[bytes] = []
    handler = ProcessorLogHandler(sent.append, Redaction.from_environment())
    handler.addFilter(_fixed_time)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return sent


def _all_output(secret: str) -> list[str]:
    """Every line of both formats and of `l` lines for records holding `secret`, raw and, for
    JSON, each decoded string too."""
    texts: list[str] = []
    for log_format in ("json", "text"):
        stream = _stream_lines(log_format)
        _log_everywhere(secret)
        texts.append(stream.getvalue())
        if log_format == "json":
            texts.extend(_decoded(json.loads(line)) for line in stream.getvalue().splitlines())
    sent = _l_lines()
    _log_everywhere(secret)
    for line in sent:
        assert line.startswith(b"l") and line.endswith(b"\n")
        raw = line[1:].decode()
        texts.extend([raw, _decoded(json.loads(raw))])
    return texts


def _decoded(value: object) -> str:
    """All strings in a decoded JSON value (keys too), one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_decoded(k) + "\n" + _decoded(v) for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(_decoded(v) for v in value)
    return ""


@pytest.mark.parametrize("variable", [*CREDENTIAL_VARIABLES, "OPERATOR_NAMED"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=SECRETS)
@example(secret='se"cr\\et123')
@example(secret="\n\t\x01\x7f\u2028ab")
@example(secret="\u00e9\u20ac\U0001f600x")
def test_no_secret_in_clear_in_any_log_line(
    variable: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assume("\x00" not in secret)  # an environment value cannot hold NUL
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(SECRET_VARIABLES_SETTING, raising=False)
    baseline = "\n".join(_all_output("<placeholder>"))
    assume(secret not in baseline)  # e.g. "info" or "time": the line's own words, not a leak
    monkeypatch.setenv(variable, secret)
    if variable == "OPERATOR_NAMED":
        monkeypatch.setenv(SECRET_VARIABLES_SETTING, "OTHER,OPERATOR_NAMED")
    for text in _all_output(secret):
        assert secret not in text


def test_invoke_prints_no_secret_in_json_logs() -> None:
    """Issue 17: a secret holding `"` and `\\` went out in clear in JSON lines."""
    secret = 'se"cr\\et123'
    logged = repr("token " + secret)
    code = f"def handler(context, event):\n    context.logger.info({logged})\n    return 1\n"
    done = subprocess.run(
        [sys.executable, "-m", "wrapper", "invoke", "--code", code, "--log-format", "json"],
        env={**os.environ, "GIT_TOKEN": secret},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "token ***" in [json.loads(line)["message"] for line in done.stderr.splitlines()]
    for output in (done.stdout, done.stderr):
        assert secret not in output
        assert json.dumps(secret)[1:-1] not in output
        assert "cr\\\\et" not in output


# --- the property: no secret in a status document or an error message --------------------

ENV_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
LONGER_SECRETS = st.text(ENV_CHARACTERS, min_size=8, max_size=24)
"""Any characters an environment value can hold; eight at least, so none is found by chance in
a store's binary index."""
RETURNS = "import os\ndef handler():\n    return 'value ' + os.environ[{variable!r}]\n"
RAISES = (
    "import os\ndef handler():\n    raise RuntimeError('failed: ' + os.environ[{variable!r}])\n"
)
INIT_FAILS = (
    "import os\ndef init(context):\n    raise ValueError(os.environ[{variable!r}])\n"
    "def handler():\n    return 1\n"
)


def _forms(secret: str) -> list[bytes]:
    """The secret as bytes, raw and in the escaped forms text may quote it in."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return [form.encode("utf-8", "surrogateescape") for form in forms]


def _everything_written(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("variable", [*CREDENTIAL_VARIABLES, "OPERATOR_NAMED"])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=LONGER_SECRETS)
@example(secret='se"cr\\et123')
@example(secret="\n\t\x01\x7f\u2028abcd")
def test_no_secret_in_a_status_document_or_an_error_message(
    variable: str,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    capfdbinary: pytest.CaptureFixture[bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Jobs that return and raise the secret, a failing init and a handler error under
    --debug: the status files, everything in the store, stdout and stderr stay clean."""
    from wrapper.cli import main

    assume(not secret.isspace())  # eight spaces are in any indented JSON: not a leak
    folder = tmp_path_factory.mktemp("secrets")
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, secret)
    monkeypatch.setenv(SECRET_VARIABLES_SETTING, "OPERATOR_NAMED")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    store, codes = str(folder / "store"), []
    runs = [
        ["job", "--code", RETURNS, "--status-file", str(folder / "status-0.json")],
        ["job", "--code", RAISES, "--status-file", str(folder / "status-1.json")],
        ["job", "--code", INIT_FAILS, "--init-function", "init"],
        ["invoke", "--code", RAISES, "--debug"],
    ]
    for number, argv in enumerate(runs):
        argv[2] = argv[2].format(variable=variable)
        store_flags = ["--store", store, "--run-id", f"r{number}"] if argv[0] == "job" else []
        path, modules = list(sys.path), set(sys.modules)
        codes.append(main([*argv, *store_flags]))
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
    assert codes[0] == 0 and all(codes[1:]), codes
    captured = capfdbinary.readouterr()
    written = _everything_written(folder / "store") + b"\n".join(
        p.read_bytes() for p in folder.glob("status-*.json")
    )
    assert b"the handler raised RuntimeError: failed: ***" in written
    for form in _forms(secret):
        assert form not in written
        assert form not in captured.out and form not in captured.err


@pytest.mark.parametrize("variable", [*CREDENTIAL_VARIABLES, "OPERATOR_NAMED"])
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=LONGER_SECRETS)
@example(secret='se"cr\\et123')
def test_no_secret_in_a_build_context(
    variable: str,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The secret in the environment and in every run value: no file of the context has it."""
    from wrapper.build.context import BuildPlan, ContextSettings, write_context
    from wrapper.plan import FunctionPlan
    from wrapper.sources.settings import SourceSettings

    assume(not secret.isspace())
    folder = tmp_path_factory.mktemp("build")
    monkeypatch.setenv(variable, secret)
    monkeypatch.setenv(SECRET_VARIABLES_SETTING, "OPERATOR_NAMED")
    function = FunctionPlan(
        name="hello",
        python_version="PYTHON3_11",
        handler="handler",
        code="def handler(context, event):\n    return 1\n",
        parameters={"key": secret},
        init_parameters={"api_key": secret},
        inputs={"data": f"store://p/dataitem/table/{secret}"},
    )
    context = folder / "context"
    write_context(BuildPlan(function, (), None, ()), context, ContextSettings(SourceSettings()))
    written = _everything_written(context)
    assert b"def handler" in written
    for form in _forms(secret):
        assert form not in written

"""`fn-wrapper invoke` end to end, as a real subprocess (DESIGN §4, §5, §10)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wrapper.cli import COMMANDS
from wrapper.cli.invoke import OPTIONS
from wrapper.errors import ExitCode
from wrapper.settings import COMMON_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
HELLO_SPEC = ROOT / "examples" / "hello" / "function.yaml"
PYTHON_TRACEBACK = "Traceback (most recent call last)"

ECHO = """
import json

def handler(context, event):
    body = event.body
    if isinstance(body, bytes):
        body = body.decode()
    return {
        "method": event.method,
        "path": event.path,
        "fields": dict(event.fields),
        "headers": dict(event.headers),
        "body": body,
        "id": event.id,
    }
"""


def ok_json(result: subprocess.CompletedProcess) -> Any:
    """The JSON body of a successful run (exit 0)."""
    assert result.returncode == ExitCode.COMPLETED, result.stderr.decode()
    return json.loads(result.stdout)


def failed(result: subprocess.CompletedProcess, code: ExitCode) -> str:
    """stderr of a run that failed before answering: one clear message, nothing on stdout."""
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert result.stdout == b""
    assert PYTHON_TRACEBACK not in stderr
    assert "fn-wrapper invoke: error: " in stderr
    return stderr


@pytest.fixture
def echo(write_tree: Any) -> Path:
    return write_tree({"echo.py": ECHO}) / "echo.py"


# --- sources ---------------------------------------------------------------------------------


def test_code_flag(run_cli: Any) -> None:
    result = run_cli("invoke", "--code", "def handler(event):\n    return 'hi from code'\n")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"hi from code"


def test_code_src_file_with_module_handler(run_cli: Any, write_tree: Any) -> None:
    root = write_tree(
        {
            "greet.py": """
                def shout(name):
                    return f"HELLO {name.upper()}!"

                def handler(context, event, name="world"):
                    return shout(name)
            """
        }
    )
    result = run_cli(
        "invoke", "--code-src", "greet.py", "--handler", "greet:handler",
        "--parameters", '{"name": "ada"}', cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"HELLO ADA!"


def test_code_src_folder_with_helpers_and_init(run_cli: Any, write_tree: Any) -> None:
    root = write_tree(
        {
            "main.py": """
                from helpers import double

                def init(context, factor):
                    context.user_data.factor = factor

                def handler(context, event):
                    return {"value": double(context.user_data.factor)}
            """,
            "helpers.py": """
                def double(x):
                    return 2 * x
            """,
        }
    )
    result = run_cli(
        "invoke", "--code-src", str(root), "--init-function", "init",
        "--init-parameters", '{"factor": 21}',
    )  # fmt: skip
    assert ok_json(result) == {"value": 42}


def test_hello_example_spec_file(run_cli: Any) -> None:
    result = run_cli(
        "invoke", "--spec", str(HELLO_SPEC), "--body", '{"name": "Ada"}',
        "--header", "Content-Type: application/json", "--header", "X-Request-Id: req-42",
    )  # fmt: skip
    assert ok_json(result) == {"message": "Hello, Ada!", "request_id": "req-42"}


def test_hello_example_from_another_folder(run_cli: Any, tmp_path: Path) -> None:
    """The example's relative code_src starts at the spec file, not at the working folder."""
    result = run_cli("invoke", "--spec", str(HELLO_SPEC), "--path", "/?name=Bob", cwd=tmp_path)
    body = ok_json(result)
    assert body["message"] == "Hello, Bob!"
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])


def test_spec_on_stdin(run_cli: Any) -> None:
    spec = {
        "function": {
            "name": "adder",
            "python_version": "PYTHON3_11",
            "source": {
                "code": "def add(a, b, event):\n    return {'sum': a + b}\n",
                "handler": "add",
            },
        },
        "run": {"parameters": {"a": 1, "b": 2}},
    }
    result = run_cli(
        "invoke", "--spec", "-", "--parameters", '{"b": 40}', input=json.dumps(spec).encode()
    )
    assert ok_json(result) == {"sum": 41}


def test_spec_from_env_twin(run_cli: Any) -> None:
    result = run_cli(
        "invoke",
        "--init-parameters",
        '{"greeting": "Ciao"}',
        env={
            "FN_WRAPPER_SPEC": str(HELLO_SPEC),
            "FN_WRAPPER_BODY": '{"name": "Env"}',
            "FN_WRAPPER_HEADER": '["Content-Type: application/json"]',
        },
    )
    assert ok_json(result)["message"] == "Ciao, Env!"


def test_source_and_request_from_env_twins(run_cli: Any, write_tree: Any) -> None:
    root = write_tree({"funcs.py": ECHO.replace("def handler(", "def echo(")})
    result = run_cli(
        "invoke",
        env={
            "FN_WRAPPER_CODE_SRC": str(root / "funcs.py"),
            "FN_WRAPPER_HANDLER": "funcs:echo",
            "FN_WRAPPER_METHOD": "patch",
            "FN_WRAPPER_PATH": "/env?k=v",
            "FN_WRAPPER_HEADER": '["X-A: 1", "x-b: 2"]',
        },
    )
    body = ok_json(result)
    assert body["method"] == "PATCH"
    assert (body["path"], body["fields"]) == ("/env", {"k": "v"})
    assert body["headers"] == {"X-A": "1", "X-B": "2"}


def test_flags_beat_env_twins(run_cli: Any, write_tree: Any) -> None:
    root = write_tree(
        {
            "a.py": "def handler(event):\n    return 'from a'\n",
            "b.py": "def handler(event):\n    return 'from b'\n\n"
            "def other(event):\n    return 'b other'\n",
        }
    )
    result = run_cli(
        "invoke",
        "--code-src",
        str(root / "b.py"),
        env={"FN_WRAPPER_CODE_SRC": str(root / "a.py"), "FN_WRAPPER_HANDLER": "other"},
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"b other"


# --- the request -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["text", "file", "stdin"])
def test_body_forms(run_cli: Any, echo: Path, tmp_path: Path, form: str) -> None:
    text = "line one\nline two ünïcode"
    stdin = None
    if form == "text":
        body = text
    elif form == "file":
        (tmp_path / "body.txt").write_text(text, encoding="utf-8")
        body = "@" + str(tmp_path / "body.txt")
    else:
        body, stdin = "@-", text.encode()
    result = run_cli("invoke", "--code-src", str(echo), "--body", body, input=stdin)
    data = ok_json(result)
    assert data["body"] == text
    assert data["method"] == "POST"


def test_json_body_is_decoded_for_a_json_content_type(run_cli: Any, echo: Path) -> None:
    result = run_cli(
        "invoke", "--code-src", str(echo), "--body", '{"a": [1, 2]}',
        "--header", "content-type: application/json",
    )  # fmt: skip
    data = ok_json(result)
    assert data["body"] == {"a": [1, 2]}
    assert data["headers"] == {"Content-Type": "application/json"}


def test_method_path_query_and_repeated_headers(run_cli: Any, echo: Path) -> None:
    result = run_cli(
        "invoke", "--code-src", str(echo), "--method", "delete", "--path", "/x?a=1&b=2",
        "--header", "X-One: 1", "--header", "x-two:  two words ", "--header", "X-Request-Id: abc-1",
    )  # fmt: skip
    data = ok_json(result)
    assert data["method"] == "DELETE"
    assert data["path"] == "/x"
    assert data["fields"] == {"a": "1", "b": "2"}
    assert data["headers"]["X-One"] == "1"
    assert data["headers"]["X-Two"] == "two words"
    assert data["id"] == "abc-1"
    assert data["body"] == ""


def test_default_method_and_path(run_cli: Any, echo: Path) -> None:
    data = ok_json(run_cli("invoke", "--code-src", str(echo)))
    assert (data["method"], data["path"], data["fields"]) == ("GET", "/", {})


def test_verbose_prints_status_and_headers_on_stderr(run_cli: Any) -> None:
    code = (
        "def handler(context, event):\n"
        "    return context.Response(body={'ok': True}, headers={'X-Custom': 'yes'},\n"
        "                            content_type='application/json', status_code=201)\n"
    )
    result = run_cli("invoke", "--code", code, "--verbose")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"ok": True}
    stderr = result.stderr.decode().splitlines()
    assert "< 201" in stderr
    assert "< Content-Type: application/json" in stderr
    assert "< X-Custom: yes" in stderr
    assert b"<" not in result.stdout


def test_bytes_reply_is_written_as_is(run_cli: Any) -> None:
    result = run_cli("invoke", "--code", "def handler(event):\n    return bytes(range(256))\n")
    assert result.returncode == 0
    assert result.stdout == bytes(range(256))


def test_async_handler_and_async_init(run_cli: Any) -> None:
    code = (
        "import asyncio\n\n"
        "async def init(context, greeting):\n"
        "    await asyncio.sleep(0)\n"
        "    context.user_data.greeting = greeting\n\n"
        "async def handler(context, event):\n"
        "    await asyncio.sleep(0)\n"
        "    return {'greeting': context.user_data.greeting, 'body': event.body.decode()}\n"
    )
    result = run_cli(
        "invoke", "--code", code, "--init-function", "init",
        "--init-parameters", '{"greeting": "hey"}', "--body", "b",
    )  # fmt: skip
    assert ok_json(result) == {"greeting": "hey", "body": "b"}


def test_other_python_version_warns_and_goes_on(run_cli: Any) -> None:
    """DESIGN §2: a python_version other than the interpreter's is a warning, not an error."""
    running = "{}.{}".format(*sys.version_info[:2])
    other = "PYTHON3_10" if running != "3.10" else "PYTHON3_12"
    result = run_cli(
        "invoke", "--code", "def handler(event):\n    return 'ran'\n", "--python-version", other,
        "--log-format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"ran"
    warnings = [
        json.loads(line)
        for line in result.stderr.decode().splitlines()
        if line.startswith("{") and '"warning"' in line
    ]
    assert any(
        f"asks for Python {other[6:].replace('_', '.')}" in w["message"]
        and f"running on {running}" in w["message"]
        for w in warnings
    ), result.stderr.decode()


# --- exit codes and error messages -----------------------------------------------------------


def test_handler_raising_exits_1_without_exception_text(run_cli: Any) -> None:
    code = "def handler(event):\n    raise RuntimeError('secret-token-123')\n"
    result = run_cli("invoke", "--code", code)
    assert result.returncode == ExitCode.HANDLER_FAILED
    body = json.loads(result.stdout)
    assert set(body) == {"error", "request_id"}
    assert body["error"] == "handler failed"
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert b"secret-token-123" not in result.stdout
    assert b"RuntimeError" not in result.stdout
    # The type, message (and traceback) go to the log, with the request id.
    log = result.stderr.decode()
    assert body["request_id"] in log
    assert "RuntimeError: secret-token-123" in log
    assert "fn-wrapper invoke: error" not in log


def test_handler_raising_with_debug_puts_details_in_the_body(run_cli: Any) -> None:
    code = "def handler(event):\n    raise KeyError('missing-thing')\n"
    result = run_cli("invoke", "--code", code, "--debug", "--header", "X-Request-Id: dbg-1")
    assert result.returncode == ExitCode.HANDLER_FAILED
    body = json.loads(result.stdout)
    assert body["error"] == "handler failed"
    assert body["request_id"] == "dbg-1"
    assert body["type"] == "KeyError"
    assert "missing-thing" in body["message"]
    assert "missing-thing" in body["traceback"] and "KeyError" in body["traceback"]
    debug_env = run_cli("invoke", "--code", code, env={"FN_WRAPPER_DEBUG": "true"})
    assert json.loads(debug_env.stdout)["type"] == "KeyError"


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(200, ExitCode.COMPLETED), (404, ExitCode.COMPLETED), (503, ExitCode.HANDLER_FAILED)],
)
def test_exit_code_follows_the_status(run_cli: Any, status: int, exit_code: ExitCode) -> None:
    """Exit 0 when the status is below 500 (DESIGN §10), the status line first with --verbose."""
    code = f"def handler(event):\n    return ({status}, 'text {status}')\n"
    result = run_cli("invoke", "--code", code, "--verbose")
    assert result.returncode == exit_code
    assert result.stdout == f"text {status}".encode()
    stderr = result.stderr.decode().splitlines()
    assert stderr[:2] == [f"< {status}", "< Content-Type: text/plain; charset=utf-8"]


def test_http_error_answers_with_its_status(run_cli: Any) -> None:
    code = (
        "from wrapper import HTTPError\n\n"
        "def handler(event):\n    raise HTTPError(409, {'error': 'conflict'})\n"
    )
    result = run_cli("invoke", "--code", code, "--verbose")
    assert result.returncode == ExitCode.COMPLETED
    assert json.loads(result.stdout) == {"error": "conflict"}
    assert "< 409" in result.stderr.decode().splitlines()


@pytest.mark.parametrize(
    "raised",
    ["KeyboardInterrupt", "SystemExit(0)", "GeneratorExit", "Own('mine')"],
)
@pytest.mark.parametrize("kind", ["def", "async def"])
def test_any_base_exception_from_the_handler_exits_1_with_the_short_message(
    run_cli: Any, raised: str, kind: str
) -> None:
    """The handler failed (DESIGN §5): the 500 body, the log record; no raw traceback."""
    code = f"class Own(BaseException):\n    pass\n\n{kind} handler(event):\n    raise {raised}\n"
    result = run_cli("invoke", "--code", code, "--header", "X-Request-Id: r-base")
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.HANDLER_FAILED, stderr
    assert json.loads(result.stdout) == {"error": "handler failed", "request_id": "r-base"}
    (record,) = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert record["request_id"] == "r-base"
    assert record["message"].startswith(f"handler handler failed: {raised.split('(')[0]}")
    assert "internal error" not in stderr
    assert not [line for line in stderr.splitlines() if line.startswith(PYTHON_TRACEBACK)]


@pytest.mark.parametrize(
    "code",
    [
        "def handler(ctx, event):\n    return {'ctx': type(ctx).__name__, 'path': event.path}\n",
        "def handler(c, e):\n    return {'ctx': type(c).__name__, 'path': e.path}\n",
        "import functools\n\n"
        "def plain(function):\n"
        "    def wrapper(*args, **kwargs):\n"
        "        return function(*args, **kwargs)\n"
        "    return wrapper\n\n"
        "@plain\n"
        "async def handler(context, event):\n"
        "    return {'ctx': type(context).__name__, 'path': event.path}\n",
    ],
    ids=["ctx-event", "c-e", "async-behind-a-plain-decorator"],
)
def test_nuclio_shaped_and_decorated_async_handlers(run_cli: Any, code: str) -> None:
    """Called `handler(context, event)` by position; a returned coroutine is awaited."""
    result = run_cli("invoke", "--code", code, "--path", "/p")
    assert ok_json(result) == {"ctx": "Context", "path": "/p"}


@pytest.mark.parametrize(
    ("returned", "exit_code", "body"),
    [
        ("(204, 'some body')", ExitCode.COMPLETED, b""),
        ("(304, 'some body')", ExitCode.COMPLETED, b""),
        ("(101, 'x')", ExitCode.HANDLER_FAILED, None),
        ("context.Response(status_code=600)", ExitCode.HANDLER_FAILED, None),
        ("context.Response(headers={'X-A': 'a\\x01b'})", ExitCode.HANDLER_FAILED, None),
    ],
)
def test_the_reply_is_the_one_serve_would_send(
    run_cli: Any, returned: str, exit_code: ExitCode, body: Any
) -> None:
    code = f"def handler(context, event):\n    return {returned}\n"
    result = run_cli("invoke", "--code", code, "--header", "X-Request-Id: r-http")
    assert result.returncode == exit_code, result.stderr.decode()
    if body is None:
        assert json.loads(result.stdout) == {"error": "handler failed", "request_id": "r-http"}
    else:
        assert result.stdout == body


def test_verbose_shows_the_headers_serve_would_send(run_cli: Any) -> None:
    code = (
        "def handler(context, event):\n"
        "    return context.Response(body='<b>', headers={'Content-Type': 'text/html',\n"
        "        'Content-Length': '99', 'Connection': 'close', 'X-Kept': '1'})\n"
    )
    result = run_cli("invoke", "--code", code, "--verbose", "--method", "HEAD")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""  # HEAD: no body, as serve
    assert result.stderr.decode().splitlines()[:3] == [
        "< 200",
        "< Content-Type: text/html",
        "< X-Kept: 1",
    ]


GOOD = "def handler(event):\n    return 'ok'\n"


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        pytest.param(
            ["--code", GOOD, "--python-version", "PYTHON3_8"],
            {},
            "invalid run spec:\n  function.python_version: 'PYTHON3_8' is not one of "
            "PYTHON3_9, PYTHON3_10, PYTHON3_11, PYTHON3_12, PYTHON3_13\n",
            id="bad-python-version",
        ),
        pytest.param(
            ["--spec", '{"function": {"name": "f", "python_version": "PYTHON3_11", "code": "x",'
             ' "colour": 1}}'],
            {},
            "invalid run spec:\n  function.colour: unknown field (allowed: name, kind, ",
            id="bad-spec-field",
        ),
        pytest.param(
            ["--spec", '{"function": '], {}, "inline spec: invalid JSON at line 1",
            id="bad-spec-json",
        ),
        pytest.param(
            ["--code", GOOD], {"FN_WRAPPER_PARAMETERS": "not json"},
            "FN_WRAPPER_PARAMETERS: not valid JSON", id="bad-env-twin",
        ),
        pytest.param(
            ["--code", GOOD, "--parameters", '{"x": 1}'], {},
            "handler does not accept 'x' (its arguments: event)", id="unaccepted-parameter",
        ),
        pytest.param(
            ["--code", "def init(context, a):\n    pass\n\n" + GOOD, "--init-function", "init",
             "--init-parameters", '{"b": 1}'],
            {},
            "init function 'init' does not match init_parameters: extra (not in its signature): "
            "'b'; missing (required by it): 'a'",
            id="init-signature-mismatch",
        ),
        pytest.param(
            ["--code", GOOD, "--init-parameters", '{"b": 1}'], {},
            "init_parameters given (b) but the function has no init function",
            id="init-params-no-init",
        ),
        pytest.param(
            ["--spec", '{"function": {"name": "f", "python_version": "PYTHON3_11", "code": "x"},'
             ' "run": {"inputs": {"data": "store://p/dataitem/table/t"}}}'],
            {},
            "run.inputs: entity inputs are resolved by the job door (fn-wrapper job)",
            id="inputs-need-the-job-door",
        ),
        pytest.param(
            ["--code", GOOD, "--header", "no colon here"], {},
            "--header: 'no colon here' is not 'Name: value'", id="bad-header",
        ),
        pytest.param(
            ["--code", GOOD, "--body", "@/nonexistent/body.json"], {},
            "--body: cannot read /nonexistent/body.json: No such file or directory",
            id="bad-body-file",
        ),
        pytest.param(
            ["--spec", "/nonexistent/spec.yaml"], {},
            "--spec: cannot read /nonexistent/spec.yaml: No such file or directory",
            id="missing-spec",
        ),
        pytest.param(
            [], {},
            "invalid run spec:\n  function.source: no code: give one of code, base64 or code_src",
            id="no-source",
        ),
        pytest.param(
            ["--code", GOOD, "--handler", "not a handler"], {},
            "handler: 'not a handler' is not a valid reference",
            id="malformed-handler",
        ),
    ],
)  # fmt: skip
def test_bad_input_exits_2(
    run_cli: Any, args: list[str], env: dict[str, str], fragment: str
) -> None:
    stderr = failed(run_cli("invoke", *args, env=env), ExitCode.BAD_INPUT)
    assert f"fn-wrapper invoke: error: {fragment}" in stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--parameters", "{oops"], "argument --parameters: not valid JSON"),
        (
            ["--init-parameters", "[1, 2]"],
            "argument --init-parameters: expected a JSON object, got list",
        ),
        (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_bad_flag_exits_2(run_cli: Any, args: list[str], fragment: str) -> None:
    result = run_cli("invoke", "--code", GOOD, *args)
    stderr = failed(result, ExitCode.BAD_INPUT)
    assert stderr.startswith("usage: fn-wrapper invoke")
    assert f"fn-wrapper invoke: error: {fragment}" in stderr


def test_unknown_flag_exits_2(run_cli: Any) -> None:
    result = run_cli("invoke", "--code", GOOD, "--no-such-flag")
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.BAD_INPUT
    assert result.stdout == b""
    assert "error: unrecognized arguments: --no-such-flag" in stderr
    assert PYTHON_TRACEBACK not in stderr


@pytest.mark.parametrize(
    ("files", "args", "fragment"),
    [
        pytest.param(
            {"main.py": GOOD}, ["--code-src", "{root}/absent.py"],
            "code_src '{root}/absent.py': no such file or folder", id="missing-file",
        ),
        pytest.param(
            {"broken.py": "def handler(event)\n    return 1\n"}, ["--code-src", "{root}/broken.py"],
            "syntax error in broken.py line 1: ", id="syntax-error",
        ),
        pytest.param(
            {"main.py": "def handle(event):\n    return 1\n"}, ["--code-src", "{root}"],
            "handler: module 'main' has no 'handler'; did you mean 'handle'? "
            "the module defines: handle",
            id="handler-not-found",
        ),
        pytest.param(
            {"main.py": GOOD}, ["--code-src", "{root}", "--handler", "nomod:handler"],
            "no module named 'nomod' (modules found: main)", id="handler-module-missing",
        ),
        pytest.param(
            {"main.py": "import not_installed_pkg_xyz\n\n" + GOOD}, ["--code-src", "{root}"],
            "module 'main' imports 'not_installed_pkg_xyz' (main.py line 1), "
            "which is not installed",
            id="missing-dependency",
        ),
        pytest.param(
            {"wrapper.py": GOOD}, ["--code-src", "{root}", "--handler", "wrapper:handler"],
            "the source defines a top-level wrapper.py, which would hide the runtime's own "
            "'wrapper' package: rename it",
            id="shadows-runtime",
        ),
        pytest.param(
            {"notes.txt": "hello"}, ["--code-src", "{root}/notes.txt"],
            "code_src '{root}/notes.txt': not a .py file, a folder or a zip / tar archive",
            id="not-python",
        ),
    ],
)  # fmt: skip
def test_source_failure_exits_3(
    run_cli: Any, write_tree: Any, files: dict[str, str], args: list[str], fragment: str
) -> None:
    root = write_tree(files)
    args = [a.replace("{root}", str(root)) for a in args]
    stderr = failed(run_cli("invoke", *args), ExitCode.SOURCE_FAILED)
    assert f"fn-wrapper invoke: error: {fragment.replace('{root}', str(root))}" in stderr


def test_invalid_base64_exits_3(run_cli: Any) -> None:
    stderr = failed(run_cli("invoke", "--base64", "!!not base64!!"), ExitCode.SOURCE_FAILED)
    assert "fn-wrapper invoke: error: function.base64: not valid base64" in stderr


def test_init_function_raising_exits_4_with_the_user_traceback(
    run_cli: Any, write_tree: Any
) -> None:
    root = write_tree(
        {
            "main.py": """
                def init(context):
                    raise ValueError("init exploded")

                def handler(event):
                    return "never"
            """
        }
    )
    result = run_cli("invoke", "--code-src", str(root), "--init-function", "init")
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.INIT_FAILED, stderr
    assert result.stdout == b""
    assert "fn-wrapper invoke: error: init function raised ValueError: init exploded" in stderr
    assert "Traceback (user code)" in stderr
    assert 'raise ValueError("init exploded")' in stderr
    assert PYTHON_TRACEBACK not in stderr
    assert "wrapper/invocation.py" not in stderr


def test_nuclio_init_context_raising_exits_4(run_cli: Any) -> None:
    code = "def init_context(context):\n    raise OSError('no db')\n\n" + GOOD
    result = run_cli("invoke", "--code", code)
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.INIT_FAILED, stderr
    assert "fn-wrapper invoke: error: init function raised OSError: no db" in stderr


def test_module_raising_at_import_exits_4_with_the_user_traceback(
    run_cli: Any, write_tree: Any
) -> None:
    root = write_tree({"main.py": "SETTING = 1\nraise KeyError('at import')\n\n" + GOOD})
    result = run_cli("invoke", "--code-src", str(root))
    stderr = result.stderr.decode()
    assert result.returncode == ExitCode.INIT_FAILED, stderr
    assert result.stdout == b""
    assert (
        "fn-wrapper invoke: error: importing module 'main' raised KeyError: 'at import' "
        "(main.py line 2)"
    ) in stderr
    assert "Traceback (user code)" in stderr
    assert PYTHON_TRACEBACK not in stderr


# --- help, version, import cost --------------------------------------------------------------


def test_invoke_help_lists_every_flag_with_its_env_twin(run_cli: Any) -> None:
    result = run_cli("invoke", "--help")
    assert result.returncode == 0
    # The section is "options:" from Python 3.10 on, "optional arguments:" before.
    _, options_part = re.split(r"\n(?:options|optional arguments):\n", result.stdout.decode())
    options_part = " ".join(options_part.split())
    for option in (*OPTIONS, *COMMON_OPTIONS):
        pattern = rf"{re.escape(option.flag)}[ ,][^\[]*\[env {re.escape(option.env)}[\] ;]"
        assert re.search(pattern, options_part), f"{option.flag} / {option.env} not in help"
    for twin in ("FN_WRAPPER_CODE_SRC", "FN_WRAPPER_HANDLER", "FN_WRAPPER_BODY", "FN_WRAPPER_SPEC"):
        assert f"[env {twin}" in options_part
    assert "[env FN_WRAPPER_HEADER (a JSON array)]" in options_part
    assert "default: /" in options_part  # --path


def test_top_level_help_lists_subcommands_and_exit_codes(run_cli: Any) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith("usage: fn-wrapper")
    for name, summary in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name
        assert " ".join(summary.split()[:3]) in " ".join(text.split())
    assert "invoke" in COMMANDS
    assert "FN_WRAPPER_<FLAG>" in text
    assert "0 completed, 1 handler failed, 2 bad spec or argument" in " ".join(text.split())


def test_version(run_cli: Any) -> None:
    from wrapper import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"fn-wrapper {__version__}"


def test_no_subcommand_is_a_usage_error(run_cli: Any) -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: fn-wrapper" in result.stderr.decode()
    assert PYTHON_TRACEBACK not in result.stderr.decode()


HEAVY = ("pydantic", "nuclio_sdk", "yaml", "asyncio")


@pytest.mark.parametrize("module", ["wrapper", "wrapper.cli"])
def test_importing_the_package_stays_light(module: str) -> None:
    script = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, cwd=ROOT, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []

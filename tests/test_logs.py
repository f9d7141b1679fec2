"""Log output: JSON lines, readable text, request ids, and secrets masked in every line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from wrapper.logs import REQUEST_ID, configure_logging

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def test_json_lines_carry_level_time_request_id_and_fields() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    token = REQUEST_ID.set("req-1")
    try:
        logging.getLogger("function").info("hello %s", "ada", extra={"with": {"n": 1}})
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("wrapper.x").warning("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "info" and first["message"] == "hello ada"
    assert first["request_id"] == "req-1" and first["with"] == {"n": 1}
    assert first["time"].endswith("Z") and first["logger"] == "function"
    assert "request_id" not in second and second["level"] == "warning"


def test_exceptions_stay_inside_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("wrapper").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_text_format_and_level_filter() -> None:
    stream = io.StringIO()
    configure_logging("warning", "text", stream)
    logging.getLogger("wrapper").info("hidden")
    logging.getLogger("wrapper").error("shown")
    (line,) = stream.getvalue().splitlines()
    assert line.split()[1:] == ["error", "shown"]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "coloured"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False)],
)
def test_text_on_a_terminal_is_coloured(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], coloured: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    stream = Terminal()
    configure_logging("info", "auto", stream)  # text, on a terminal
    token = REQUEST_ID.set("0123456789abcdef")
    try:
        logging.getLogger("function").warning("from the handler")
    finally:
        REQUEST_ID.reset(token)
    line = stream.getvalue().rstrip("\n")
    if coloured:
        assert "\x1b[33mwarning" in line and "\x1b[36m[0123456789ab]\x1b[0m" in line
        assert line.endswith(" from the handler")
    else:
        assert "\x1b[" not in line and line.split()[1:] == [
            "warning", "[0123456789ab]", "from", "the", "handler",
        ]  # fmt: skip


def test_text_off_a_terminal_is_never_coloured() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    logging.getLogger("wrapper").error("plain")
    assert "\x1b[" not in stream.getvalue()


def test_auto_is_json_off_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    logging.getLogger("wrapper").info("x")
    assert json.loads(stream.getvalue())["message"] == "x"


def test_secret_values_are_masked_in_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_TOKEN", "ghp_SECRET123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws/SECRET+456")
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("function").info("token ghp_SECRET123 and aws/SECRET+456")
    text = stream.getvalue()
    assert "SECRET" not in text
    assert json.loads(text)["message"] == "token *** and ***"

"""The nuclio door's `l` lines: `*_with` values cut like the message, the whole line capped."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from wrapper.context import UserLogger
from wrapper.nuclio.logs import MAX_LINE, MAX_MESSAGE, ProcessorLogHandler
from wrapper.secrets import Redaction


@pytest.fixture
def sent() -> Iterator[list[bytes]]:
    lines: list[bytes] = []
    logger = logging.getLogger("function")
    handler = ProcessorLogHandler(lines.append, Redaction(["s3cr3t-value"]))
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _record(line: bytes) -> dict:  # type: ignore[type-arg]
    assert line[:1] == b"l" and line.endswith(b"\n") and line.count(b"\n") == 1
    return json.loads(line[1:])  # type: ignore[no-any-return]


def test_a_huge_with_value_is_cut_like_the_message(sent: list[bytes]) -> None:
    UserLogger().info_with("x", blob="A" * 5_000_000, nested={"deep": ["B" * 100_000]})
    [line] = sent
    assert len(line) < 200_000
    fields = _record(line)["with"]
    assert fields["blob"].startswith("A" * MAX_MESSAGE)
    assert fields["blob"].endswith(f"[{5_000_000 - MAX_MESSAGE} more characters cut]")
    assert fields["nested"]["deep"][0].endswith("more characters cut]")


def test_a_line_of_many_values_is_capped_keeping_message_and_traceback(
    sent: list[bytes],
) -> None:
    many = {f"k{i}": "v" * MAX_MESSAGE for i in range(40)}
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("function").exception("failed", extra={"with": many})
    [line] = sent
    assert len(line) <= MAX_LINE + 2
    record = _record(line)
    assert record["message"] == "failed"
    assert "ValueError: boom" in record["with"]["traceback"]
    assert "k0" not in record["with"] and "cut" in record["with"]["cut"]


def test_a_message_of_escaped_characters_still_fits_the_cap(sent: list[bytes]) -> None:
    logging.getLogger("function").info("\x01" * 5_000_000, extra={"with": {"t": "\x02" * 10**6}})
    [line] = sent
    assert len(line) <= MAX_LINE + 2
    assert _record(line)["message"].endswith("more characters cut]")


def test_with_values_and_objects_are_masked_before_encoding(sent: list[bytes]) -> None:
    class Token:
        def __log__(self) -> str:
            return "token s3cr3t-value"

    UserLogger().info_with("url https://u:s3cr3t-value@h/x", obj=Token(), v=["s3cr3t-value"])
    [line] = sent
    assert b"s3cr3t" not in line
    record = _record(line)
    assert record["message"] == "url https://***@h/x"
    assert record["with"] == {"obj": "token ***", "v": ["***"]}

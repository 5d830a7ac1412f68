"""The rate limit on log lines about hostile input (bridge/logs.py)."""

from __future__ import annotations

import logging

import pytest

from bridge.logs import Noise, one_line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_per_interval_with_the_count_suppressed() -> None:
    """A thousand junk packets of one kind in a minute: one line; the next
    minute's first line says how many were left out."""
    clock = Clock()
    noise = Noise(interval=60, clock=clock)
    due = [noise.should_log("socketio:malformed_packet") for _ in range(1000)]
    assert due[0] == 0 and due[1:] == [None] * 999
    assert noise.should_log("aiohttp.server:LineTooLong") == 0  # kinds count apart
    clock.now += 61
    assert noise.should_log("socketio:malformed_packet") == 999
    assert noise.counts["socketio:malformed_packet"] == 1001


def test_lines_carry_kind_detail_and_count(caplog: pytest.LogCaptureFixture) -> None:
    """The line is one line: client text is escaped and cut."""
    noise = Noise(interval=60, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="bridge.hostile"):
        noise.note("engineio:malformed_packet", "bad\npacket" + "x" * 500)
        noise.note("engineio:malformed_packet", "again")
    (record,) = caplog.records
    assert record.getMessage() == "refused client input"
    assert vars(record)["kind"] == "engineio:malformed_packet"
    assert vars(record)["suppressed"] == 0
    assert "\n" not in vars(record)["detail"] and len(vars(record)["detail"]) < 200


def test_one_line_escapes_control_characters() -> None:
    assert one_line("a\r\nb\x00") == "a\\r\\nb\\x00"


def test_tokens_are_blanked() -> None:
    """A JWT quoted in an error message never reaches the line."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert one_line(f"bad header {jwt} here") == "bad header <jwt> here"

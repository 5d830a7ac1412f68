"""Waiting in tests: for a condition (never for a fixed time, and never
asserting how long it took), and for what must not happen."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

QUIET = 0.4  # how long we listen for something that must not arrive


async def eventually(
    condition: Callable[[], Any],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Polls `condition()` (a plain or an async function) until it returns
    something true, and returns that. No timing is asserted: `timeout` is a
    generous bound for a busy machine, after which it fails naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        await asyncio.sleep(interval)


def assert_quiet_log(records: list[logging.LogRecord]) -> None:
    """No traceback and no error: at most the rate-limited warnings."""
    loud = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert loud == [], [(r.name, r.getMessage()) for r in loud]

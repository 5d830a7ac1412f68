"""Waiting and stopping that survive Python 3.11's lost cancellations.

On 3.11, `asyncio.wait_for(event.wait(), t)` returns normally when a cancel
lands in the same loop turn as the event is set (gh-86296): a loop built on
it never sees its stop and `await task` hangs for ever. A container then
hangs on SIGTERM until it is killed. `wait_set` waits with `asyncio.timeout`,
which never eats a cancel; `stop_tasks` gives each task a grace to finish its
own clean-up (a push being sent, the relay cursor moved, a lease released),
then cancels again whatever is still running (it may have swallowed the
first cancel, as a library may), and gives up on it shortly after. A cancel
again during the grace would cut those clean-ups short."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds a task gets to stop after its cancel
CANCEL_AGAIN_EVERY = 0.5  # seconds between cancels of a task still running after the grace
LAST_CHANCE = 1.0  # seconds of such cancels before the task is given up on


def where(task: asyncio.Task[object]) -> str:
    """Where a task is suspended, outermost first, following the chain of
    awaited coroutines ("stop (app.py:331) > wait_for (tasks.py:476)"):
    what a stuck stop waits on."""
    coro: object = task.get_coro()
    places = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        name = frame.f_code.co_filename.rsplit("/", 1)[-1]
        places.append(f"{frame.f_code.co_name} ({name}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(places) or "?"


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """True when `event` is set within `timeout` seconds."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop_tasks(tasks: Iterable[asyncio.Task[object]], grace: float = STOP_GRACE) -> list[str]:
    """Cancels `tasks` and waits up to `grace` seconds for them; those still
    running then are cancelled again every CANCEL_AGAIN_EVERY for
    LAST_CHANCE seconds; returns the names of those not done even then
    (logged, and left to the loop's end). Exceptions other than the cancel
    were the task's own to log."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=grace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LAST_CHANCE
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(CANCEL_AGAIN_EVERY, left))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning(
                "a task ended with an error on stop",
                extra={"task": task.get_name(), "error": repr(task.exception())},
            )
    names = sorted(task.get_name() for task in pending)
    if names:
        log.error("tasks did not stop within the grace", extra={"tasks": names, "grace": grace})
    return names

"""Stopping background loops: a cancel that lands in the same loop turn as
the event a loop waits on must still stop the loop (Python 3.11's
`asyncio.wait_for` loses it), a task that swallows a cancel is cancelled
again after the grace rather than waited on for ever, and a task finishing
its clean-up within the grace is not cut short."""

from __future__ import annotations

import asyncio

from bridge.tasks import stop_tasks, wait_set, where


async def test_a_cancel_as_the_event_is_set_still_stops_the_loop() -> None:
    """A loop waiting on an event is cancelled in the same turn as the
    event is set (a doorbell ring at SIGTERM): the loop ends cancelled."""
    event = asyncio.Event()
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            await wait_set(event, 10)
            event.clear()
            turns += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    event.set()
    task.cancel()
    assert await stop_tasks([task], 2) == []
    assert task.cancelled()
    assert turns == 0


async def test_wait_set_answers_set_and_timed_out() -> None:
    """An event already set answers at once; one never set answers False
    after the timeout."""
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 10) is True


async def test_a_task_that_swallows_one_cancel_is_cancelled_again() -> None:
    """A task that catches the first cancel and goes on (as a library loop
    on 3.11 may) is cancelled again after the grace, and stops then."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await stop_tasks([task], 0.2) == []
    assert task.cancelled()
    assert swallowed == 1


async def test_a_task_that_never_stops_is_named_after_the_grace() -> None:
    """A task that ignores every cancel is given up on after the grace and
    named, so the stop goes on and the operator knows which one hung."""
    release = asyncio.Event()

    async def deaf() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf(), name="deaf-loop")
    await asyncio.sleep(0)
    assert await stop_tasks([task], 0.2) == ["deaf-loop"]
    release.set()
    task.cancel()
    await asyncio.wait({task})


async def test_a_clean_up_within_the_grace_is_not_cut_short() -> None:
    """A task whose cancel starts a clean-up that takes a while (a push
    being sent, a lease released) finishes it when it takes less than the
    grace: it is not cancelled again meanwhile."""
    finished = asyncio.Event()

    async def draining() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.8)  # longer than CANCEL_AGAIN_EVERY
            finished.set()

    task = asyncio.create_task(draining())
    await asyncio.sleep(0)
    assert await stop_tasks([task], 5) == []
    assert finished.is_set()
    assert task.cancelled()


async def test_where_names_the_chain_a_task_waits_in() -> None:
    """The stuck-stop report names each coroutine a task is suspended in,
    outermost first."""

    async def inner() -> None:
        await asyncio.sleep(10)

    async def outer() -> None:
        await inner()

    task = asyncio.create_task(outer())
    await asyncio.sleep(0)
    chain = where(task)
    assert chain.index("outer (test_tasks.py:") < chain.index("inner (test_tasks.py:")
    assert chain.rsplit(" > ", 1)[1].startswith("sleep (tasks.py:")
    await stop_tasks([task], 1)

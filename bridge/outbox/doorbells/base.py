"""The doorbell interface, with the defaults every doorbell shares."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.tasks import stop_tasks, wait_set


class Bell:
    """An asyncio.Event a doorbell rings and the relay waits on."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        try:
            return await wait_set(self._event, timeout)
        finally:
            self._event.clear()


class Doorbell:
    """What the relay listens to. The defaults here are a doorbell that no
    writer rings (the poll): subclasses say otherwise where they differ."""

    # Whether writers must be asked to ring (bridge.doorbell.armed); false
    # for a doorbell no writer can ring (poll).
    needs_arming = False
    # Whether a ring per writer is cheap (a NOTIFY), so the relay may keep
    # the bell armed through a trickle of writes; not a Realtime broadcast,
    # which counts against the project's events per second.
    cheap_rings = False
    kind = "doorbell"
    state = "starting"

    def __init__(self) -> None:
        self._bell = Bell()

    async def start(self) -> None:
        return None

    def ring(self) -> None:
        """A ring from inside this process (it committed a change itself)."""
        self._bell.ring()

    async def wait(self, timeout: float) -> bool:
        """Waits up to `timeout` s for a ring; returns whether it rang."""
        return await self._bell.wait(timeout)

    def unannounced(self, rows: int) -> None:
        """The relay woke without a ring and found `rows` changes a ring
        should have announced (the bell was armed): a missed ring."""
        return None

    def status(self) -> dict[str, Any]:
        """What /healthz shows about the doorbell."""
        return {"kind": self.kind, "state": self.state}

    def health_problem(self) -> str | None:
        """A problem line for /healthz, or None."""
        return None

    async def stop(self) -> None:
        return None


class SupervisedDoorbell(Doorbell):
    """A doorbell whose connection belongs to one supervisor task, which
    keeps it up for the doorbell's lifetime (subclasses write `_supervise`)."""

    task_name = "doorbell"

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])

    async def _supervise(self) -> None:
        raise NotImplementedError


class PollDoorbell(Doorbell):
    """No ring at all: the relay looks every poll interval."""

    kind = "poll"
    state = "polling"

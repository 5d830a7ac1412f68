"""The doorbell interface."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from bridge.tasks import stop_tasks, wait_set


class Doorbell(Protocol):
    # Whether writers must be asked to ring (bridge.doorbell.armed); false
    # for doorbells that hear every insert anyway (Realtime) or none (poll).
    needs_arming: bool
    # Whether a ring per writer is cheap (a NOTIFY), so the relay may keep
    # the bell armed through a trickle of writes; not a Realtime broadcast,
    # which counts against the project's events per second.
    cheap_rings: bool

    async def start(self) -> None: ...

    def ring(self) -> None:
        """A ring from inside this process (it committed a change itself)."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Waits up to `timeout` s for a ring; returns whether it rang."""
        ...

    def unannounced(self, rows: int) -> None:
        """The relay woke without a ring and found `rows` changes a ring
        should have announced (the bell was armed): a missed ring."""
        ...

    def status(self) -> dict[str, Any]:
        """What /healthz shows about the doorbell."""
        ...

    def health_problem(self) -> str | None:
        """A problem line for /healthz, or None."""
        ...

    async def stop(self) -> None: ...


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


class SupervisedDoorbell:
    """A doorbell whose connection belongs to one supervisor task, which
    keeps it up for the doorbell's lifetime (subclasses write `_supervise`)."""

    needs_arming = False
    cheap_rings = False
    task_name = "doorbell"
    kind = "doorbell"

    def __init__(self) -> None:
        self._bell = Bell()
        self._task: asyncio.Task[None] | None = None
        self.state = "starting"

    def unannounced(self, rows: int) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "state": self.state}

    def health_problem(self) -> str | None:
        return None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=self.task_name)

    def ring(self) -> None:
        self._bell.ring()

    async def wait(self, timeout: float) -> bool:
        return await self._bell.wait(timeout)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])

    async def _supervise(self) -> None:
        raise NotImplementedError


class PollDoorbell:
    """No ring at all: the relay looks every poll interval."""

    needs_arming = False
    cheap_rings = False

    def __init__(self) -> None:
        self._bell = Bell()

    async def start(self) -> None:
        return None

    def ring(self) -> None:
        self._bell.ring()

    def unannounced(self, rows: int) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"kind": "poll", "state": "polling"}

    def health_problem(self) -> str | None:
        return None

    async def wait(self, timeout: float) -> bool:
        return await self._bell.wait(timeout)

    async def stop(self) -> None:
        return None

"""Group commit: requests that arrive while earlier ones are being written
wait together and are written together, in one statement and one commit.
Nothing waits on purpose: a request that finds a free writing slot and no
queue is written at once, in its caller's task; under load the queue forms
and the writer tasks take it in batches, so the cost per request falls as
the rate rises (round trips, commits and WAL flushes are shared) instead of
the queue growing.

One batch is written at a time; a second one is written beside it only
once the first has been in flight for `stall` seconds (a row lock held
elsewhere, a slow disk). Two in flight as a rule cost more than they save
on a small machine: at 500 sends/s on 2 cores (bench/send_path.py, six
runs each) the daemon plus Postgres went from 1.85 to 1.68 ms of CPU per
send on average, p50 latency unchanged, because requests that arrive while
one is in flight share the next statement instead of racing it.

The writer tasks (`run`) are started and stopped with the daemon; a caller
of `submit` gets its own result or its own exception. Callers that must keep
an order among themselves (one socket's sends) wait for each result before
they submit the next, so batching never reorders them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from bridge.tasks import wait_set

Item = TypeVar("Item")
Result = TypeVar("Result")
# Writes a batch; returns, in order, each item's result or exception.
BatchWriter = Callable[[list[Item]], Awaitable[Sequence["Result | BaseException"]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: BatchWriter[Item, Result],
        *,
        max_batch: int,
        max_writing: int,
        stall: float,
        stopped: Callable[[], BaseException],
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        # Batches being written at once (in callers' tasks or writer tasks).
        self.max_writing = max_writing
        # How long the batches in flight must all have been written before
        # another is written beside them.
        self.stall = stall
        # What a request still queued when the last writer stops is told.
        self._stopped = stopped
        self._pending: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._wake = asyncio.Event()
        self._writing: list[float] = []  # when each batch in flight began
        self.writers = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self.writers > 0

    def _slot_wait(self) -> float:
        """Seconds until a batch may be written: 0 now; a batch in flight
        shorter than `stall` makes the next wait (for it, or for the stall);
        with every slot taken, only a batch's end frees one."""
        if len(self._writing) >= self.max_writing:
            return self.stall
        if not self._writing:
            return 0.0
        return max(0.0, self.stall - (time.monotonic() - self._writing[-1]))

    def _begin(self) -> float:
        # (time.monotonic, not the loop's time: on Python 3.11 every
        # get_running_loop is a getpid system call, and this is per send.)
        started = time.monotonic()
        self._writing.append(started)
        return started

    async def submit(self, item: Item) -> Result:
        if not self._pending and not self._slot_wait():
            # Nobody waiting and a slot free: write it now, alone. (Only its
            # own request rides on this task, so if the caller is cancelled
            # nobody else's write is.)
            started = self._begin()
            try:
                (result,) = await self._write([item])
            finally:
                self._slot_freed(started)
            if isinstance(result, BaseException):
                raise result
            return result
        if self._loop is None:  # kept: on Python 3.11 each lookup is a getpid call
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = self._loop.create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        """A writer task: takes the queue in batches while slots are free."""
        self.writers += 1
        try:
            while True:
                if self._pending and 0 < len(self._writing) < self.max_writing:
                    # One in flight: until it ends (a wake) or has stalled.
                    await wait_set(self._wake, self._slot_wait())
                else:  # nothing in flight, or every slot taken: until a wake
                    await self._wake.wait()
                self._wake.clear()
                while self._pending and not self._slot_wait():
                    batch = [
                        self._pending.popleft()
                        for _ in range(min(len(self._pending), self.max_batch))
                    ]
                    started = self._begin()
                    try:
                        await self._flush(batch)
                    finally:
                        self._slot_freed(started)
        finally:
            self.writers -= 1
            if not self.writers:
                self._fail_pending()

    def _slot_freed(self, started: float) -> None:
        self._writing.remove(started)
        if self._pending:
            self._wake.set()

    async def _flush(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the batch as a whole failed (database gone)
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _fail_pending(self) -> None:
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(self._stopped())

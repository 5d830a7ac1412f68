"""Group commit: requests that arrive while earlier ones are being written
wait together and are written together, in one statement and one commit.
Nothing waits on purpose: a request that finds a free writing slot and no
queue is written at once, in its caller's task; under load the queue forms
and the writer tasks take it in batches, so the cost per request falls as
the rate rises (round trips, commits and WAL flushes are shared) instead of
the queue growing.

The writer tasks (`run`) are started and stopped with the daemon; a caller
of `submit` gets its own result or its own exception. Callers that must keep
an order among themselves (one socket's sends) wait for each result before
they submit the next, so batching never reorders them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

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
        stopped: Callable[[], BaseException],
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        # Batches being written at once (in callers' tasks or writer tasks).
        self.max_writing = max_writing
        # What a request still queued when the last writer stops is told.
        self._stopped = stopped
        self._pending: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._wake = asyncio.Event()
        self._writing = 0
        self.writers = 0

    @property
    def running(self) -> bool:
        return self.writers > 0

    async def submit(self, item: Item) -> Result:
        if not self._pending and self._writing < self.max_writing:
            # Nobody waiting and a slot free: write it now, alone. (Only its
            # own request rides on this task, so if the caller is cancelled
            # nobody else's write is.)
            self._writing += 1
            try:
                (result,) = await self._write([item])
            finally:
                self._slot_freed()
            if isinstance(result, BaseException):
                raise result
            return result
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        """A writer task: takes the queue in batches while slots are free."""
        self.writers += 1
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending and self._writing < self.max_writing:
                    batch = [
                        self._pending.popleft()
                        for _ in range(min(len(self._pending), self.max_batch))
                    ]
                    self._writing += 1
                    try:
                        await self._flush(batch)
                    finally:
                        self._slot_freed()
        finally:
            self.writers -= 1
            if not self.writers:
                self._fail_pending()

    def _slot_freed(self) -> None:
        self._writing -= 1
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

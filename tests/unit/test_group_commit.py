"""Group commit of sends (bridge/group_commit.py), with a batch writer that
stands for the database and is held open on purpose: requests that arrive
while a batch is being written go together in the next one; a second batch
is written beside the first only once the first has stalled; each caller
gets its own answer, and a caller's refusal is its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from bridge.group_commit import GroupCommit
from bridge.tasks import stop_tasks


class HeldWriter:
    """Writes batches (records them) and holds each open until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, batch: list[str]) -> Sequence[str | BaseException]:
        self.batches.append(batch)
        self.started.set()
        await self.release.wait()
        return [ValueError(item) if item.startswith("bad") else f"stored {item}" for item in batch]


@asynccontextmanager
async def group(writer: HeldWriter, stall: float) -> AsyncIterator[GroupCommit[str, str]]:
    """A group commit with its two writer tasks running, as the app has it."""
    commit: GroupCommit[str, str] = GroupCommit(
        writer, max_batch=64, max_writing=2, stall=stall, stopped=lambda: RuntimeError("stopped")
    )
    runners = [asyncio.create_task(commit.run()) for _ in range(2)]
    try:
        yield commit
    finally:
        await stop_tasks(runners)


async def test_sends_during_a_write_go_together_after_it() -> None:
    """Ava's send is being written; Leo's and Mia's arrive meanwhile. They
    are not written beside it but together, in one batch, once it is done;
    each caller gets its own message back."""
    writer = HeldWriter()
    async with group(writer, stall=60) as commit:
        first = asyncio.create_task(commit.submit("ava"))
        await writer.started.wait()
        later = [asyncio.create_task(commit.submit(n)) for n in ("leo", "mia")]
        for _ in range(20):  # the writers have every chance to start a second batch
            await asyncio.sleep(0)
        assert writer.batches == [["ava"]]
        writer.release.set()
        assert await first == "stored ava"
        assert await asyncio.gather(*later) == ["stored leo", "stored mia"]
        assert writer.batches == [["ava"], ["leo", "mia"]]


async def test_a_stalled_write_lets_a_second_batch_go_beside_it() -> None:
    """Ava's send hangs (a row lock held elsewhere). Once it has been in
    flight for the stall time, Leo's send is written beside it instead of
    waiting behind it, and is answered while Ava's is still hanging."""
    writer = HeldWriter()
    async with group(writer, stall=0.05) as commit:
        first = asyncio.create_task(commit.submit("ava"))
        await writer.started.wait()
        writer.started.clear()
        second = asyncio.create_task(commit.submit("leo"))
        await writer.started.wait()  # written beside the hanging one
        assert writer.batches == [["ava"], ["leo"]]
        assert not first.done()
        writer.release.set()
        assert await second == "stored leo"
        assert await first == "stored ava"


async def test_a_refused_send_in_a_batch_is_only_its_callers() -> None:
    """Three sends wait behind a write; the middle one is refused. Its
    caller gets the refusal; the two others are stored."""
    writer = HeldWriter()
    async with group(writer, stall=60) as commit:
        first = asyncio.create_task(commit.submit("ava"))
        await writer.started.wait()
        later = [asyncio.create_task(commit.submit(n)) for n in ("leo", "bad-mia", "zoe")]
        await asyncio.sleep(0)
        writer.release.set()
        await first
        results = await asyncio.gather(*later, return_exceptions=True)
        assert results[0] == "stored leo" and results[2] == "stored zoe"
        assert isinstance(results[1], ValueError)
        assert writer.batches == [["ava"], ["leo", "bad-mia", "zoe"]]

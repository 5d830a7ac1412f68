"""Each instance's own reader of the outbox, with several instances.

Python-socketio's Redis pub/sub is at-most-once: a Redis restart or stall
silently drops emits meant for the sockets of other instances. So with
`REDIS_URL` set, delivery does not go through it: every instance tails
`bridge.outbox` itself from a cursor it keeps in memory (the snapshot cursor
of bridge.outbox_tail, gap-free though ids commit out of order) and emits to
its own sockets only. The lease holder's relay still writes push jobs, keeps
the stored cursor and prunes, but emits nothing.

What Redis still carries may be lost: the rings that wake other instances'
tails (a lost ring costs at most a poll), typing and presence. A tail starts
at the snapshot of its start: its sockets connected after it and catch up
on older changes with `sync`.
"""

from __future__ import annotations

import asyncio
import logging

from bridge.db_health import DatabaseHealth
from bridge.metrics import Metrics
from bridge.outbox.delivery import Emit, emit_change
from bridge.outbox.doorbells.base import Bell
from bridge.store import Store

log = logging.getLogger(__name__)

# Without a ring (Redis away) a tail still looks this often.
TAIL_POLL = 1.0
MAX_BACKOFF = 5.0


class OutboxTail:
    def __init__(
        self,
        store: Store,
        emit: Emit,
        *,
        storage_public_base: str,
        batch_size: int,
        health: DatabaseHealth,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.emit = emit
        self.storage_public_base = storage_public_base
        self.batch_size = batch_size
        self.health = health
        self._bell = Bell()
        self._done: str | None = None
        self._upto: str | None = None
        self._after = 0

    def ring(self) -> None:
        self._bell.ring()

    @property
    def cursor(self) -> str | None:
        """The snapshot this tail has emitted everything visible in."""
        return self._done

    async def start(self) -> None:
        """Sets the cursor at now: what this instance's sockets will hear."""
        self._done = await self.store.snapshot_now()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                more = await self._page()
                backoff = 0.2
                if not more:
                    await self._bell.wait(TAIL_POLL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = await self.health.after_failure(
                    exc, backoff, cap=MAX_BACKOFF, logger=log, what="outbox tail failed"
                )

    async def _page(self) -> bool:
        """Emits the next page to this instance's sockets; returns whether a
        window is still open (read on at once)."""
        assert self._done is not None, "start() sets the cursor"
        rows, upto, complete = await self.store.tail_outbox(
            self._done, self._upto, self._after, self.batch_size
        )
        for row in rows:  # an untranslatable one is skipped: the relay logs and counts it
            await emit_change(row, self.emit, self.storage_public_base, self.metrics)
        if rows:
            self.metrics.outbox_batch("tail", len(rows))
        if complete:
            self._done, self._upto, self._after = upto, None, 0
        else:
            self._upto, self._after = upto, int(rows[-1]["id"])
        return not complete

"""The outbox consumer: reads the next page of changes in id order
(bridge.relay_peek), translates and emits them, and only then moves its
cursor past them (bridge.relay_advance), in the transaction that writes
their push jobs. A crash before that commit leaves the cursor where it was,
so the page is relayed again (at-least-once); a row that cannot be
translated is logged, counted and passed so it cannot block the rows behind
it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

import asyncpg

from bridge.db import Connection, redoable_transaction
from bridge.db_health import DatabaseHealth
from bridge.early_emit import EarlyEmits
from bridge.metrics import Metrics
from bridge.outbox.delivery import emit_change
from bridge.outbox.doorbells.base import Doorbell
from bridge.outbox.lease import Lease
from bridge.outbox.store import OutboxPage, cursor_moved
from bridge.store import Store
from bridge.translate import Change, PushIntent, Translation

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
# How long the relay waits for this process's own next write before it asks
# other writers to ring: a busy bridge costs writers no NOTIFY, and a write
# from elsewhere waits at most this long while the bridge is busy.
LINGER = 0.02
# While its reads keep finding changes of other writers (supabase-js, other
# instances) the relay reads again this soon, the bell unarmed: no ring per
# writer, and a read per this interval however many writers commit in it.
FLOW_GAP = 0.003
# A read that found at most this many changes after a ring leaves a bell
# with cheap rings (NOTIFY) armed: a ring per writer costs less than reading
# every FLOW_GAP and arming again while writers come one at a time. (2 read
# more pages per message at 200 messages/s in bench/socket_latency.py.)
TRICKLE = 1
# The bell armed while a writer that may have seen it unarmed is still open
# (bridge.arm_doorbell could not take the lock): that writer will not ring,
# so the relay reads again after this, doubling up to RESEAL_MAX, and tries
# again, until it can sleep on the bell.
RESEAL_FIRST = 0.01
RESEAL_MAX = 1.0
# A ring for this process's own sends whose changes all went out at their
# commit (bridge/early_emit.py) owes the relay only its cursor move: the
# relay reads after this long, once for all such sends meanwhile, instead of
# once per send. A write that still needs the relay (a change left to it, a
# push job, a receipt or edit the bridge wrote) ends the wait at once, so
# nothing clients see waits for it but changes of other writers, which wait
# for the relay's next read as before: at most LINGER while the bridge writes,
# so GATHER is as long. (At 500 sends/s: a read per 20 ms at most instead of
# one per send.)
GATHER = LINGER


class Emitter(Protocol):
    async def __call__(self, event: str, payload: dict[str, Any], rooms: Sequence[str]) -> None: ...


# Called inside the batch transaction, so push jobs commit with the ack.
PushSink = Callable[[Connection, Change, Sequence[PushIntent]], Awaitable[None]]


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        doorbell: Doorbell,
        emit: Emitter | None,
        *,
        storage_public_base: str,
        batch_size: int,
        poll_interval: float,
        metrics: Metrics,
        pushes: PushSink | None = None,
        lease: Lease | None = None,
        after_batch: Callable[[], None] | None = None,
        health: DatabaseHealth | None = None,
        emit_at_commit: bool = True,
    ) -> None:
        self.health = health or DatabaseHealth(metrics)
        self.store = store
        self.doorbell = doorbell
        self.emit = emit
        self.storage_public_base = storage_public_base
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.metrics = metrics
        self.pushes = pushes
        self.lease = lease
        self.after_batch = after_batch
        self.idle = asyncio.Event()
        # A page emitted whose cursor move rides on the next read
        # (bridge.relay_step), or is made when the relay goes idle.
        self._unmoved: OutboxPage | None = None
        # Sends emitted right after their commit (a single instance only,
        # unless `emit_at_commit` is off: then the relay emits them all).
        self.early = (
            EarlyEmits(emit, storage_public_base, metrics)
            if emit is not None and emit_at_commit
            else None
        )
        if self.early is not None:
            self.early.pushes_owed = pushes is not None
        # The doorbell as this relay last set it: armed, and sealed (no
        # writer open that may have seen it unarmed); see _cycle.
        self._armed = False
        self._sealed = False
        self._reseal = RESEAL_FIRST
        # This process wrote since the relay last looked (its own ring).
        self._own = False
        # ... a change that still needs the relay's read (`wrote`, not settled).
        self._owed = False
        # A ring since the relay last woke that was a settled write's.
        self._settled_rang = False
        # The relay slept on a sealed bell and woke without a ring.
        self._unrung = False

    def wrote(self, settled: bool = False) -> None:
        """This process committed a change: wake the relay, if it is the
        instance relaying (a standby has nothing to do with it). `settled`:
        every change of it went out at its commit, and the relay owes it
        nothing but a cursor move (the relay may gather it, GATHER)."""
        if self.lease is None or self.lease.held:
            self._own = True
            if settled:
                self._settled_rang = True
            else:
                self._owed = True
            self.doorbell.ring()

    async def run(self) -> None:
        backoff = 0.5
        try:
            while True:
                try:
                    if self.lease is not None and not await self.lease.try_acquire():
                        self._unmoved = None  # the cursor is another relay's now
                        self._armed = self._sealed = False  # and so is the bell
                        if self.early is not None:
                            self.early.reset(enabled=False)
                        self.metrics.inc("relay_standby_waits")
                        self.idle.set()
                        await self.doorbell.wait(self.poll_interval)
                        continue
                    if self.early is not None and not self.early.enabled:
                        self.early.reset(enabled=True)  # the lease is this relay's again
                    await self._cycle()
                    backoff = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.metrics.inc("relay_errors")
                    self._armed = self._sealed = False  # arm again, whatever it is now
                    backoff = await self.health.after_failure(
                        exc, backoff, cap=MAX_BACKOFF, logger=log, what="outbox relay cycle failed"
                    )
        finally:
            await self._leave()
            if self.lease is not None:
                await self.lease.release()

    async def _settle(self) -> None:
        """Moves the stored cursor past the page emitted last, if it has not
        moved yet (before the relay sleeps: outbox_pending, pruning and a
        successor read the stored cursor)."""
        past, self._unmoved = self._unmoved, None
        if past is not None:
            with self._cursor_may_have_moved():
                await Store.advance_outbox(self.store.pool, past)

    @contextlib.contextmanager
    def _cursor_may_have_moved(self) -> Iterator[None]:
        """Moving the stored cursor found it moved by someone else (a seed's
        bridge.skip_pending): not a failure; the next read goes on from it."""
        try:
            yield
        except asyncpg.RaiseError as exc:
            if not cursor_moved(exc):
                raise
            self.metrics.inc("relay_cursor_moved")
            log.warning("the relay cursor was moved by someone else; reading on from it")

    async def _leave(self) -> None:
        """On stop, best effort and only while this relay holds the lease:
        move the cursor past a page left unmoved (else it is only relayed
        again), and disarm the bell (a relaying bridge that leaves it armed
        would have every writer NOTIFY nobody from then on; the next relay
        arms it again when it goes idle, after looking at the outbox)."""
        if self.lease is not None and not self.lease.held:
            return
        if self._unmoved is not None:
            await self._on_stop(self._settle(), "could not move the relay cursor on stop")
        if self.doorbell.needs_arming:
            await self._on_stop(
                self.store.disarm_doorbell(), "could not disarm the doorbell on stop"
            )

    @staticmethod
    async def _on_stop(step: Awaitable[None], failure: str) -> None:
        try:
            await asyncio.wait_for(step, 2)
        except (Exception, asyncio.CancelledError) as exc:  # the database may be gone too
            log.warning(failure, extra={"error": repr(exc)})

    async def _cycle(self) -> None:
        """One turn: read what is pending, then wait for the reason to read
        again. Three ways of waiting, by what the read found:

        - this process wrote (`wrote`): its next write rings in-process, so
          no writer is asked to ring; LINGER s without one, the bell is armed;
        - changes of other writers (supabase-js, other instances), the bell
          unarmed: read again after FLOW_GAP, as long as reads find some;
        - nothing new: the bell armed (bridge.arm_doorbell), sleep until it
          rings (or the poll). An armed bell that rang for changes is
          disarmed after reading them, and the relay goes on reading as
          above; but one change at a time (a trickle of writers, each rung
          for) keeps a bell whose rings are cheap (NOTIFY) armed: a ring per
          writer costs less than reading on every FLOW_GAP and arming again.

        Every wait ends in a read, so what commits meanwhile is read then,
        by the snapshot cursor: a missing ring costs time, never a change.
        An own ring for sends that went out at their commit waits up to
        GATHER for more of them before the read (`_gather`)."""
        self._owed = self._settled_rang = False  # what rang before this read is read now
        found = await self.drain()
        if found and self._unrung:  # their writers saw the bell armed: a ring went missing
            self.doorbell.unannounced(found)
        self._unrung = False
        own, self._own = self._own, False
        if not self.doorbell.needs_arming:
            if not await self.doorbell.wait(LINGER):
                await self._sleep(self.poll_interval, linger=False)
            return
        if self._armed:
            trickle = found <= TRICKLE and self._sealed and self.doorbell.cheap_rings
            if not own and (not found or trickle):
                await self._sleep_armed()
                return
            # Read on without rings: writers need not ring while the relay reads anyway.
            await self.store.disarm_doorbell()
            self._armed = self._sealed = False
        if own:
            if await self.doorbell.wait(LINGER):
                await self._gather()
                return
        elif found:
            await self.doorbell.wait(FLOW_GAP)
            return
        await self._settle()
        self._reseal = RESEAL_FIRST  # the writers open now are others than last time
        await self._arm()  # the next turn's read is the one after arming

    async def _gather(self) -> None:
        """After an own ring: if only settled writes rang (their changes went
        out at their commit), wait until GATHER has passed or a ring comes
        that needs the read (an owed write, or a ring from elsewhere); then
        one read serves them all."""
        loop = asyncio.get_running_loop()
        until = loop.time() + GATHER
        if not self._owed and self._settled_rang:
            self.metrics.inc("relay_gathers")
        while not self._owed and self._settled_rang:
            self._settled_rang = False
            left = until - loop.time()
            if left <= 0 or not await self.doorbell.wait(left):
                break

    async def _arm(self) -> None:
        self._sealed = await self.store.arm_doorbell()
        self._armed = True
        if not self._sealed:
            self.metrics.inc("doorbell_unsealed")

    async def _sleep_armed(self) -> None:
        """Nothing new and the bell armed: sleep until it rings. Not sealed
        (a writer that may have seen the bell unarmed is still open, perhaps
        in a long transaction: it will not ring), only for a while: read
        again and try to seal again, until the relay can. Later writers ring
        meanwhile, so their changes go out at once all the same."""
        if not self._sealed:
            await self._arm()
            if self._sealed:
                return  # read once more: those writers have committed
            wait, self._reseal = self._reseal, min(self._reseal * 2, RESEAL_MAX)
            await self._settle()
            await self.doorbell.wait(min(wait, self.poll_interval))
            return
        await self._sleep(self.poll_interval)

    async def _sleep(self, timeout: float, *, linger: bool = True) -> None:
        """Idle: the cursor settled, wait for a ring or the poll. With
        `linger`, a page left unmoved first waits LINGER s for a ring (the
        next read moves it in its own statement), then is moved."""
        if linger and self._unmoved is not None and await self.doorbell.wait(LINGER):
            return
        await self._settle()
        self.idle.set()
        rang = await self.doorbell.wait(timeout)
        self.idle.clear()
        self._unrung = not rang

    async def drain(self) -> int:
        """Relays pending changes until the window opened by the first page
        is done; returns how many. (What commits meanwhile rang the doorbell
        and is relayed on the next turn.)"""
        total = 0
        while True:
            n, complete = await self._batch()
            total += n
            if complete:
                return total

    async def _batch(self) -> tuple[int, bool]:
        """Reads a page, emits it, then moves the cursor past it: in the
        transaction that writes the page's push jobs when it has any, else
        with the next read (one round trip per page) or when the relay goes
        idle. A crash before the move only means the page is relayed again
        (at-least-once), so the commit need not wait for the disk either."""
        past, self._unmoved = self._unmoved, None
        read = None
        with self._cursor_may_have_moved():
            read = await self.store.peek_outbox(self.batch_size, past)
        rows, page = read or await self.store.peek_outbox(self.batch_size)
        pushes: list[tuple[Change, Translation]] = []
        for row in rows:
            delivered = await self._deliver(row)
            if delivered is not None and delivered[1].pushes and self.pushes is not None:
                pushes.append(delivered)
        if pushes and self.pushes is not None:
            # Moved by someone else: the page's push jobs go with it, skipped on purpose.
            with self._cursor_may_have_moved():
                async with self.store.pool.acquire() as conn, redoable_transaction(conn):
                    for change, result in pushes:
                        await self.pushes(conn, change, result.pushes)
                    await Store.advance_outbox(conn, page)
        elif rows:
            self._unmoved = page
        # (An empty window need not be moved past: nothing in it to relay again.)
        if rows:
            self.metrics.outbox_batch("relay", len(rows))
        if rows and self.after_batch is not None:
            self.after_batch()
        return len(rows), page.complete

    async def _deliver(self, row: asyncpg.Record) -> tuple[Change, Translation] | None:
        """Emits one change (unless it went out right after its commit,
        bridge/early_emit.py); returns it with its translation (for its push
        intents). Without an emitter every instance's tail emits
        (bridge/outbox/tail.py): the relay only translates."""
        self.metrics.inc("changes_in")
        early = self.early
        if early is None:
            return await emit_change(
                row, self.emit, self.storage_public_base, self.metrics, by_relay=True
            )
        async with early.lock:
            conversation = row["conversation_id"]
            conversation_id = str(conversation) if conversation else None
            emitted = early.passed(int(row["id"]), conversation_id)
            if emitted and self.pushes is None:
                return None
            return await emit_change(
                row,
                None if emitted else self.emit,
                self.storage_public_base,
                self.metrics,
                conversation_id,
                by_relay=True,
            )

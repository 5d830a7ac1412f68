"""The outbox's SQL: the relay's pages and cursor, replay for `sync`,
pruning, and the doorbell's arming (mixed into bridge.store.Store, which
owns the pool); and `to_change`, which reads one outbox row."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from bridge.db import Connection
from bridge.translate import Change


def to_change(
    row: asyncpg.Record | Mapping[str, Any], conversation_id: str | None = None
) -> Change:
    """One outbox row as a Change. `conversation_id`: the row's, given when
    the row does not carry it (a send's rows come grouped by conversation,
    bridge/send_changes.py); else it is read from the row. `created_at` is
    a datetime as asyncpg reads a timestamptz (in UTC)."""
    if conversation_id is None and (conversation := row["conversation_id"]):
        conversation_id = str(conversation)
    return Change(
        id=int(row["id"]),
        topic=str(row["topic"]),
        conversation_id=conversation_id,
        recipients=tuple(str(r) for r in row["recipients"]),
        payload=row["payload"],
        created_at=row["created_at"].isoformat(),
    )


PRUNE_BATCH = 1000  # rows per pruning transaction
PRUNE_PAUSE = 0.05  # seconds between them


def cursor_moved(exc: BaseException) -> bool:
    """bridge.relay_advance refused: the stored cursor is no longer where
    this relay read its page (bridge.skip_pending ran, as the seed does, or
    another relay took over). Not a failure: read on from where it is."""
    return isinstance(exc, asyncpg.RaiseError) and "relay cursor moved" in str(exc)


@dataclass(frozen=True)
class OutboxPage:
    """Where a page read by the relay sits: the cursor it was read from, the
    window's snapshot, whether it ends the window, and its last id."""

    done: str
    upto: str
    complete: bool
    last_id: int


class OutboxQueries:
    pool: asyncpg.Pool

    async def peek_outbox(
        self, limit: int, past: OutboxPage | None = None
    ) -> tuple[list[asyncpg.Record], OutboxPage]:
        """The relay's next page of changes in id order, and where it ends.
        With `past` (a page the relay has emitted) the cursor first moves
        past that page, in the same statement (bridge.relay_step); without,
        nothing moves (bridge.relay_peek)."""
        if past is None:
            rows = await self.pool.fetch("select * from bridge.relay_peek($1)", limit)
        else:
            rows = await self.pool.fetch(
                "select * from bridge.relay_step($1, $2, $3, $4, $5)",
                past.done,
                past.upto,
                past.complete,
                past.last_id,
                limit,
            )
        changes = [r for r in rows if r["id"] is not None]
        page = OutboxPage(
            done=rows[0]["done"],
            upto=rows[0]["upto"],
            complete=bool(rows[0]["complete"]),
            last_id=int(changes[-1]["id"]) if changes else 0,
        )
        return changes, page

    async def tail_outbox(
        self, done: str, upto: str | None, after_id: int, limit: int
    ) -> tuple[list[asyncpg.Record], str, bool]:
        """The page after an in-memory cursor (bridge.outbox_tail): its rows,
        the window's snapshot, and whether the page ends that window."""
        rows = await self.pool.fetch(
            "select * from bridge.outbox_tail($1, $2, $3, $4)", done, upto, after_id, limit
        )
        changes = [r for r in rows if r["id"] is not None]
        return changes, rows[0]["upto"], bool(rows[0]["complete"])

    async def snapshot_now(self) -> str:
        return str(await self.pool.fetchval("select pg_current_snapshot()::text"))

    @staticmethod
    async def advance_outbox(conn: Connection | asyncpg.Pool, page: OutboxPage) -> None:
        """Moves the relay's cursor past a page it has relayed."""
        await conn.execute(
            "select bridge.relay_advance($1, $2, $3, $4)",
            page.done,
            page.upto,
            page.complete,
            page.last_id,
        )

    async def missed_changes(
        self, user_id: str, after_id: int, limit: int
    ) -> tuple[list[asyncpg.Record], bool]:
        """Changes for `user_id` after `after_id`, oldest first, sent live or
        not yet: a row being emitted while the socket reconnected may commit
        only after this query, so "already processed" would miss it. Whatever
        is replayed here and sent live again is deduplicated by event_id.
        Second: whether the history still reaches back that far (False:
        pruned, or more than `limit` missed: the client must resync)."""
        oldest = await self.pool.fetchval("select min(id) from bridge.outbox")
        if oldest is not None and after_id + 1 < oldest:
            return [], False
        rows = await self.pool.fetch(
            "select id, topic, conversation_id, recipients, payload, created_at"
            " from bridge.outbox where id > $2 and recipients @> array[$1::uuid]"
            " order by id limit $3",
            user_id,
            after_id,
            limit + 1,
        )
        if len(rows) > limit:
            return [], False
        return list(rows), True

    async def latest_change_id(self) -> int:
        return int(await self.pool.fetchval("select coalesce(max(id), 0) from bridge.outbox"))

    async def prune_outbox(
        self, retention_hours: float, batch: int = PRUNE_BATCH, pause: float = PRUNE_PAUSE
    ) -> int:
        """Deletes relayed rows older than the retention in batches of
        `batch`, `pause` s apart: many small transactions instead of one
        that every logical decoder (Realtime's among them) must swallow whole."""
        total = 0
        while True:
            status = await self.pool.execute(
                "delete from bridge.outbox where id in (select id from bridge.outbox"
                " where created_at < now() - make_interval(secs => $1)"
                " and bridge.is_relayed(xid) order by id limit $2)",
                retention_hours * 3600,
                batch,
            )
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < batch:
                return total
            await asyncio.sleep(pause)

    async def arm_doorbell(self) -> bool:
        """Asks writers to ring (bridge.arm_doorbell, which never waits);
        returns whether the bell is sealed: every writer that may have seen
        it unarmed has committed, so a read from now on sees their rows. Not
        sealed: such a writer is still open and will not ring; read again
        soon, and call this again, until it is."""
        return bool(await self.pool.fetchval("select bridge.arm_doorbell()"))

    async def disarm_doorbell(self) -> None:
        await self.pool.execute("select bridge.disarm_doorbell()")

"""The SQL of client requests and of the bridge's own reads. Client requests
run *as the user* (RLS and grants apply, exactly as for supabase-js); only
membership checks and the outbox run with the bridge's own rights. Database
errors become StoreErrors that say whether the client or the database is at
fault (bridge/store_errors.py).

Where the rest of the bridge's SQL lives, each beside its concern:
- bridge/outbox/store.py: the outbox (pages, cursors, replay, pruning, the
  doorbell's arming), mixed into Store; bridge/outbox/lease.py: the lease lock;
- bridge/lifecycle_store.py (edits, unsends, receipts) and
  bridge/safety/store.py (blocks, reports, mutes, quiet hours), as the user;
- bridge/push/queue.py: push jobs; bridge/migrate.py: migrations and seed;
- bridge/preflight.py and bridge/outbox/doorbells/realtime_checks.py: start-up
  checks; bridge/metrics_http.py: what /metrics reads at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from bridge.db import Connection, KeptConnections, acting_as, user_claims
from bridge.db_health import is_outage
from bridge.errors import StoreError, unavailable
from bridge.group_commit import GroupCommit
from bridge.lifecycle_store import LifecycleQueries
from bridge.outbox.store import OutboxQueries
from bridge.payloads import MarkSeen, SendMessage
from bridge.permissions import PermissionWatch
from bridge.send_changes import SentChanges
from bridge.store_errors import client_errors

log = logging.getLogger(__name__)


Sent = tuple[dict[str, Any], bool]  # (message, created)
SEND_BATCH = 64  # sends written in one statement at most
SEND_WRITING = 2  # batches of sends being written at once, at most
# ... the second only once the first has been in flight this long (a lock
# held elsewhere): bridge/group_commit.py says why one at a time is cheaper.
SEND_STALL = 0.005


_NOT_WRITTEN = unavailable("the message was not written; try again")


def _send_item(user_id: str, req: SendMessage) -> dict[str, Any]:
    return {
        "claims": user_claims(user_id),
        "conversation_id": req.conversation_id,
        "content": req.content,
        "message_type": req.message_type,
        "media_url": req.media_url,
        "client_message_id": req.client_message_id,
    }


def _sent(req: SendMessage, result: dict[str, Any]) -> Sent:
    message = result["message"]
    if message is None or message["conversation_id"] != req.conversation_id:
        raise StoreError(
            "conflict", "clientMessageId was already used for another conversation", 409
        )
    return message, bool(result["created"])


class Store(OutboxQueries, LifecycleQueries):
    def __init__(self, pool: asyncpg.Pool, permissions: PermissionWatch | None = None) -> None:
        self.pool = pool
        # The send statements' connections (bridge.db.KeptConnections).
        self.send_connections = KeptConnections(pool)
        self.permissions = permissions
        # Called after this process committed a change clients must hear
        # about: the relay wakes at once instead of waiting for a doorbell.
        # Its argument: every change of the write went out at its commit and
        # owes the relay nothing but a cursor move (bridge/outbox/relay.py, GATHER).
        self.on_write: Callable[[bool], None] | None = None
        # Given each send's committed changes to emit at once
        # (bridge/early_emit.py); None: the relay (or the tails) emit them.
        # Returns whether they all went out and owe the relay nothing else.
        self.on_changes: Callable[[list[Any]], Awaitable[bool]] | None = None
        self.send_batch_failures = 0  # batches the database failed as a whole
        # Group commit of sends; its writer tasks are started by the app.
        self.sends: GroupCommit[tuple[str, SendMessage], Sent] = GroupCommit(
            self._send_batch,
            max_batch=SEND_BATCH,
            max_writing=SEND_WRITING,
            stall=SEND_STALL,
            stopped=lambda: unavailable("the service is stopping; try again"),
        )

    def _wrote(self, settled: bool = False) -> None:
        if self.on_write is not None:
            self.on_write(settled)

    @asynccontextmanager
    async def as_user(self, user_id: str) -> AsyncIterator[Connection]:
        async with (
            self.pool.acquire() as conn,
            client_errors(self.permissions),
            acting_as(conn, user_claims(user_id)),
        ):
            yield conn

    # -- writes as the user ---------------------------------------------------

    async def send_message(self, user_id: str, req: SendMessage) -> tuple[dict[str, Any], bool]:
        """Stores a message as `user_id`; returns (message, created). A retry
        with a known client_message_id returns the stored message. Sends are
        group-committed when the writers run (`sends.run`), else written
        alone; either way each is written as its own user under RLS."""
        if self.sends.running:
            return await self.sends.submit((user_id, req))
        result = await self._send_one(user_id, req)
        self._wrote()
        return result

    async def _send_one(
        self, user_id: str, req: SendMessage, settled: list[bool] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """One round trip: bridge.send_message_as switches to the user's role
        and claims inside its own statement. `settled` collects whether its
        changes all went out at their commit."""
        if self.on_changes is not None:
            (result,) = await self._send_emitting([(user_id, req)], settled)
            return _sent(req, result)
        async with client_errors(self.permissions):
            row = await self.send_connections.fetchval(
                "select bridge.send_message_as($1::jsonb, $2, $3, $4, $5, $6)",
                user_claims(user_id),
                req.conversation_id,
                req.content,
                req.message_type,
                req.media_url,
                req.client_message_id,
            )
        return _sent(req, row)

    async def _send_batch(self, batch: list[tuple[str, SendMessage]]) -> list[Sent | BaseException]:
        """Writes a batch in one statement (bridge.send_messages_as), in
        conversation order: each message locks its conversation's row until
        the commit, so two batches that took their locks in different orders
        could deadlock. If the database refuses one of them (or the batch as
        a whole fails) the statement writes nothing, and the batch is written
        one by one so that each gets its own answer."""
        order = sorted(range(len(batch)), key=lambda i: batch[i][1].conversation_id)
        results: list[Sent | BaseException] = [_NOT_WRITTEN] * len(batch)
        settled: list[bool] = []
        together = len(batch) > 1
        if together:
            try:
                row = await self._send_emitting([batch[i] for i in order], settled)
            except StoreError:
                together = False  # one of them was refused
            except asyncpg.PostgresError as exc:
                together = False
                if not is_outage(exc):  # not the client's doing, nor an outage
                    self.send_batch_failures += 1
                    log.warning(
                        "send batch failed; writing it one by one",
                        extra={"sqlstate": exc.sqlstate, "size": len(batch)},
                    )
        if together:
            for i, result in zip(order, row, strict=True):
                try:
                    results[i] = _sent(batch[i][1], result)
                except StoreError as exc:
                    results[i] = exc
        else:
            for i in order:
                try:
                    results[i] = await self._send_one(*batch[i], settled)
                except StoreError as exc:
                    results[i] = exc
                    settled.append(False)  # perhaps wrote nothing; the relay looks all the same
        self._wrote(bool(settled) and all(settled))
        return results

    async def _send_emitting(
        self, items: list[tuple[str, SendMessage]], settled: list[bool] | None = None
    ) -> list[Any]:
        """Writes sends in one statement; each one's result in order. With
        `on_changes`, the changes written come back as rows of the same
        statement (bridge.send_messages_changes) and are handed over once
        committed; a new message's row is then its message.created change's."""
        batch = [_send_item(*item) for item in items]
        if self.on_changes is None:
            async with client_errors(self.permissions):
                results = await self.send_connections.fetchval(
                    "select bridge.send_messages_as($1::jsonb)", batch
                )
            return list(results)
        async with client_errors(self.permissions):
            rows = await self.send_connections.fetch(
                "select * from bridge.send_messages_changes($1::jsonb)", batch
            )
        sent = SentChanges(rows)
        went_out = False
        try:
            went_out = await self.on_changes(sent.groups)
        except Exception:  # committed all the same: the relay delivers them
            log.exception("emitting sends at their commit failed")
        if settled is not None:
            settled.append(went_out)
        return sent.results()

    async def mark_seen(self, user_id: str, req: MarkSeen) -> tuple[str, int]:
        """Marks one message, or all of a conversation, read by `user_id`;
        returns (conversation id, messages marked)."""
        async with self.as_user(user_id) as conn:
            conversation_id = req.conversation_id
            if req.message_id is not None:
                found = await conn.fetchrow(
                    "select conversation_id, sender_id from public.messages where id = $1",
                    req.message_id,
                )
                if found is None or (
                    conversation_id is not None and str(found["conversation_id"]) != conversation_id
                ):
                    raise StoreError("not_found", "message not found", 404)
                if str(found["sender_id"]) == user_id:
                    raise StoreError("forbidden", "only the receiver marks a message seen", 403)
                conversation_id = str(found["conversation_id"])
            elif not await conn.fetchval(
                "select exists (select 1 from public.conversations where id = $1)", conversation_id
            ):
                raise StoreError("not_found", "conversation not found", 404)
            marked = await conn.fetchval(
                "select public.mark_conversation_read($1, $2)", conversation_id, req.message_id
            )
        assert conversation_id is not None
        if marked:
            self._wrote()
        return conversation_id, int(marked)

    async def register_token(self, user_id: str, token: str, platform: str) -> dict[str, Any]:
        async with self.as_user(user_id) as conn:
            row = await conn.fetchval(
                "select jsonb_build_object('id', t.id, 'platform', t.platform,"
                " 'is_active', t.is_active, 'last_used_at', t.last_used_at)"
                " from public.register_fcm_token($1, $2) t",
                token,
                platform,
            )
        result: dict[str, Any] = row
        return result

    async def remove_token(self, user_id: str, token: str) -> bool:
        async with self.as_user(user_id) as conn:
            status = await conn.execute("delete from public.fcm_tokens where token = $1", token)
        return status.endswith(" 1")

    # -- reads as the user ------------------------------------------------------

    async def conversation_list(self, user_id: str, role: str | None) -> list[dict[str, Any]]:
        """The chat list from its SQL read model (public.get_conversations),
        as the user, so RLS applies as it does for supabase-js."""
        async with self.as_user(user_id) as conn:
            rows = await conn.fetchval("select public.get_conversations($1)", role)
        result: list[dict[str, Any]] = rows
        return result

    async def messages_page(
        self, user_id: str, conversation_id: str, page: int, limit: int, before: str | None
    ) -> dict[str, Any]:
        """Newest first in conversation order (seq): page/limit as the seed,
        or a stable `before` cursor (a message id). Messages come oldest first."""
        async with self.as_user(user_id) as conn:
            if not await conn.fetchval(
                "select exists (select 1 from public.conversations where id = $1)", conversation_id
            ):
                raise StoreError("not_found", "conversation not found", 404)
            cursor = None
            if before is not None:
                cursor = await conn.fetchval(
                    "select seq from public.messages where id = $1 and conversation_id = $2",
                    before,
                    conversation_id,
                )
                if cursor is None:
                    raise StoreError("not_found", "cursor message not found", 404)
            rows = await conn.fetch(
                "select to_jsonb(m.*) from public.messages m"
                " where m.conversation_id = $1 and ($2::bigint is null or m.seq < $2)"
                " order by m.seq desc"
                " limit $3 offset $4",
                conversation_id,
                cursor,
                limit + 1,
                0 if cursor is not None else (page - 1) * limit,
            )
            messages = [r[0] for r in rows[:limit]]
            # The receiver's device has them now: delivery receipts.
            delivered = await self.fetched_by_receiver(conn, user_id, messages)
        if delivered:
            self._wrote()
        messages.reverse()
        return {
            "messages": messages,
            "page": page,
            "limit": limit,
            "has_more": len(rows) > limit,
            "next_cursor": messages[0]["id"] if messages and len(rows) > limit else None,
        }

    # -- the bridge's own reads -------------------------------------------------

    async def user_exists(self, user_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "select exists (select 1 from public.users where id = $1)", user_id
            )
        )

    async def may_join(self, user_id: str, kind: str, ident: str) -> bool:
        """Whether `user_id` takes part in the bid or campaign."""
        queries = {
            "bid": "select exists (select 1 from public.bids"
            " where id = $2 and $1 in (brand_owner_id, influencer_id))",
            "campaign": "select exists (select 1 from public.campaigns where id = $2"
            " and brand_owner_id = $1) or exists (select 1 from public.conversations"
            " where campaign_id = $2 and influencer_id = $1)",
        }
        return bool(await self.pool.fetchval(queries[kind], user_id, ident))

    async def conversation_partner(self, user_id: str, conversation_id: str) -> str | None:
        """The other participant, or None when `user_id` is not in the conversation."""
        partner = await self.pool.fetchval(
            "select case when brand_owner_id = $1 then influencer_id else brand_owner_id end"
            " from public.conversations where id = $2 and $1 in (brand_owner_id, influencer_id)",
            user_id,
            conversation_id,
        )
        return str(partner) if partner is not None else None

    async def touch_last_seen(self, user_id: str) -> None:
        await self.pool.execute(
            "update public.users set last_seen_at = now() where id = $1", user_id
        )

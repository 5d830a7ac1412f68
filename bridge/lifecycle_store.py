"""The SQL of a message's life after sending: edits, unsends and delivery
receipts, run *as the user* so RLS and the triggers of
supabase/migrations/20261125011000_message_edit_unsend.sql and
20261125011100_delivery_receipts.sql decide, exactly as for supabase-js.
Mixed into bridge.store.Store.

The database's refusals carry a code in HINT (`forbidden`, `not_editable`,
`edit_window_closed`, `not_found`, `blocked`); `as_user`'s
bridge.store_errors.client_errors turns them into StoreErrors with that code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from bridge.db import Connection
from bridge.errors import StoreError


class LifecycleQueries:
    """Needs `as_user` and `_wrote` from Store."""

    as_user: Callable[[str], AbstractAsyncContextManager[Connection]]
    _wrote: Callable[[], None]
    pool: asyncpg.Pool

    async def apply_edit_window(self, seconds: float) -> None:
        """Stores the edit window setting where the database enforces it."""
        await self.pool.execute(
            "update public.message_rules set edit_window = make_interval(secs => $1)"
            " where edit_window is distinct from make_interval(secs => $1)",
            seconds,
        )

    async def _own_change(
        self, user_id: str, sql: str, message_id: str, conversation_id: str | None, *args: Any
    ) -> dict[str, Any]:
        async with self.as_user(user_id) as conn:
            if conversation_id is not None:
                found = await conn.fetchval(
                    "select conversation_id::text from public.messages where id = $1", message_id
                )
                if found is not None and found != conversation_id:
                    raise StoreError("not_found", "message not found in that conversation", 404)
            row = await conn.fetchval(sql, message_id, *args)
        message: dict[str, Any] = row
        self._wrote()
        return message

    async def edit_message(
        self, user_id: str, message_id: str, content: str, conversation_id: str | None = None
    ) -> dict[str, Any]:
        """The sender's new text; returns the message as stored."""
        return await self._own_change(
            user_id,
            "select to_jsonb(m) from public.edit_message($1, $2) m",
            message_id,
            conversation_id,
            content,
        )

    async def unsend_message(
        self, user_id: str, message_id: str, conversation_id: str | None = None
    ) -> dict[str, Any]:
        """Unsends (a tombstone stays); again is a no-op. Returns the tombstone."""
        return await self._own_change(
            user_id,
            "select to_jsonb(m) from public.unsend_message($1) m",
            message_id,
            conversation_id,
        )

    async def mark_delivered(self, user_id: str, message_ids: Sequence[str]) -> int:
        """The receiver's device has these messages; all or nothing. Returns
        how many were not delivered before."""
        async with self.as_user(user_id) as conn:
            marked = await conn.fetchval(
                "select public.mark_messages_delivered($1::uuid[])", list(message_ids)
            )
        if marked:
            self._wrote()
        return int(marked)

    @staticmethod
    async def fetched_by_receiver(
        conn: Connection, user_id: str, messages: Sequence[dict[str, Any]]
    ) -> int:
        """Messages a receiver fetched (REST page, `sync`) are on their
        device: delivered, those not yet. Lenient: others are skipped."""
        ids = [
            m["id"]
            for m in messages
            if m.get("sender_id") != user_id
            and not m.get("delivered_at")
            and not m.get("deleted_at")
            and not m.get("is_read")
        ]
        if not ids:
            return 0
        status = await conn.execute(
            "update public.messages set delivered_at = now()"
            " where id = any($1::uuid[]) and sender_id <> auth.uid()"
            " and delivered_at is null and deleted_at is null and not is_read",
            ids,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def delivered_by_sync(self, user_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """`sync` replayed these messages to one of the receiver's sockets."""
        async with self.as_user(user_id) as conn:
            marked = await self.fetched_by_receiver(conn, user_id, messages)
        if marked:
            self._wrote()

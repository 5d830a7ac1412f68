"""bridge.send_message_as and its batch form, the socket path's writes: they
decide exactly as a supabase-js insert under RLS does, and nobody but the
bridge can call them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, open_pool, user_claims
from bridge.errors import StoreError
from bridge.payloads import SendMessage
from bridge.store import Store
from bridge.tasks import stop_tasks
from tests.support.database import count_messages
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)

SEND = "select bridge.send_message_as($1::jsonb, $2, $3, 'text', null, $4)"


async def test_a_participant_sends_and_a_retry_returns_the_same_message(
    db: asyncpg.Connection,
) -> None:
    """Leo writes into his bid conversation; a retry with the same
    client_message_id answers with the stored message, not a second one."""
    claims = json.dumps(user_claims(LEO))
    first = json.loads(await db.fetchval(SEND, claims, BID_CONVERSATION, "hi", "c-1"))
    again = json.loads(await db.fetchval(SEND, claims, BID_CONVERSATION, "hi", "c-1"))
    assert first["created"] is True and again["created"] is False
    assert first["message"]["id"] == again["message"]["id"]
    assert first["message"]["sender_id"] == LEO
    count = "select count(*) from public.messages where client_message_id = 'c-1'"
    assert await db.fetchval(count) == 1


async def test_a_stranger_is_refused_and_nothing_is_written(db: asyncpg.Connection) -> None:
    """Mia is not in Ava and Leo's bid conversation: the insert is refused
    and no message, outbox row or counter changes."""
    before = await db.fetchval("select count(*) from bridge.outbox")
    with pytest.raises(asyncpg.PostgresError):
        await db.fetchval(SEND, json.dumps(user_claims(MIA)), BID_CONVERSATION, "let me in", None)
    assert await db.fetchval("select count(*) from bridge.outbox") == before
    assert await count_messages(db, "let me in") == 0


async def test_the_role_switch_ends_with_the_statement(db: asyncpg.Connection) -> None:
    """After a send the connection is its own role again (the pool lends it
    on to the bridge's own work)."""
    await db.fetchval(SEND, json.dumps(user_claims(AVA)), DIRECT_CONVERSATION, "yo", None)
    assert await db.fetchval("select current_user") == "postgres"
    assert await db.fetchval("select current_setting('request.jwt.claims', true)") in (None, "")


BATCH = "select bridge.send_messages_as($1::jsonb)"


@pytest.mark.parametrize("role", [None, AVA])
@pytest.mark.parametrize("batched", [False, True])
async def test_clients_cannot_call_it(
    db: asyncpg.Connection, role: str | None, batched: bool
) -> None:
    """anon and authenticated (what supabase-js runs as) may call neither
    the single nor the batch form: they trust the claims they are given."""
    claims = None if role is None else user_claims(role)
    item = {"claims": user_claims(LEO), "conversation_id": BID_CONVERSATION, "content": "x"}
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with acting_as(db, claims):
            if batched:
                await db.fetchval(BATCH, json.dumps([{**item, "message_type": "text"}]))
            else:
                await db.fetchval(SEND, json.dumps(user_claims(LEO)), BID_CONVERSATION, "x", None)


@asynccontextmanager
async def group_committing(dsn: str) -> AsyncIterator[Store]:
    """A Store on its own pool with two group-commit writers running."""
    pool = await open_pool(dsn, min_size=2, max_size=4)
    store = Store(pool)
    writers = [asyncio.create_task(store.sends.run()) for _ in range(2)]
    try:
        yield store
    finally:
        await stop_tasks(writers)
        await pool.close()


async def _send_together(
    store: Store, sends: list[tuple[str, str, str]]
) -> list[tuple[dict[str, Any], bool] | BaseException]:
    return await asyncio.gather(
        *(
            store.send_message(user, SendMessage(conversation, text, "text", None, None))
            for user, conversation, text in sends
        ),
        return_exceptions=True,
    )


async def test_group_commit_answers_each_send_for_itself(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    """Sends from Ava and Leo arrive at once and are written in batches,
    each stored once as its own sender. Then a burst in which Mia sends into
    Ava and Leo's bid conversation: hers is refused with `not_found` (as for a
    missing one) and changes nothing; the others of her batch are stored all the same."""
    clean = [(AVA if i % 2 else LEO, BID_CONVERSATION, f"batch-{i}") for i in range(20)]
    mixed = [(LEO, BID_CONVERSATION, f"mixed-{i}") for i in range(9)]
    mixed.append((MIA, BID_CONVERSATION, "mixed-intruder"))
    async with group_committing(db_dsn) as store:
        first = await _send_together(store, clean)
        second = await _send_together(store, mixed)
    *stored, refused = second
    assert isinstance(refused, StoreError) and refused.code == "not_found"
    expected = clean + mixed[:-1]
    for (user, _, text), result in zip(expected, first + stored, strict=True):
        assert not isinstance(result, BaseException), result
        message, created = result
        assert created and message["content"] == text and message["sender_id"] == user
    rows = await db.fetch(
        "select sender_id::text, content from public.messages"
        " where content like 'batch-%' or content like 'mixed-%'"
    )
    assert sorted((r["sender_id"], r["content"]) for r in rows) == sorted(
        (user, text) for user, _, text in expected
    )


async def test_overlapping_batches_do_not_deadlock(db_dsn: str, db: asyncpg.Connection) -> None:
    """Ava writes into her three conversations at once, 300 sends in an
    interleaved order, so two batches in flight cover the same
    conversations: every send is stored, none fails on a deadlock."""
    forward = [DIRECT_CONVERSATION, BID_CONVERSATION, CAMPAIGN_CONVERSATION]
    backward = forward[::-1]
    # The first is written alone; then batches of 64 that visit the three
    # conversations in opposite orders, two at a time.
    sends = [(AVA, DIRECT_CONVERSATION, "overlap-0")] + [
        (AVA, (forward if (i - 1) // 64 % 2 == 0 else backward)[i % 3], f"overlap-{i}")
        for i in range(1, 300)
    ]
    async with group_committing(db_dsn) as store:
        results = await _send_together(store, sends)
        assert store.send_batch_failures == 0
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (
        await db.fetchval("select count(*) from public.messages where content like 'overlap-%'")
        == 300
    )

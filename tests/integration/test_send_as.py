"""bridge.send_message_as, the socket path's one-round-trip write: it
decides exactly as a supabase-js insert under RLS does, and nobody but the
bridge can call it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import AVA, BID_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA

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
    assert (
        await db.fetchval("select count(*) from public.messages where content = 'let me in'") == 0
    )


async def test_the_role_switch_ends_with_the_statement(db: asyncpg.Connection) -> None:
    """After a send the connection is its own role again (the pool lends it
    on to the bridge's own work)."""
    await db.fetchval(SEND, json.dumps(user_claims(AVA)), DIRECT_CONVERSATION, "yo", None)
    assert await db.fetchval("select current_user") == "postgres"
    assert await db.fetchval("select current_setting('request.jwt.claims', true)") in (None, "")


@pytest.mark.parametrize("role", [None, AVA])
async def test_clients_cannot_call_it(db: asyncpg.Connection, role: str | None) -> None:
    """anon and authenticated (what supabase-js runs as) may not call it:
    it trusts the claims it is given."""
    claims = None if role is None else user_claims(role)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with acting_as(db, claims):
            await db.fetchval(SEND, json.dumps(user_claims(LEO)), BID_CONVERSATION, "as Leo", None)

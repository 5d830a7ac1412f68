"""The chat list's one read model, public.get_conversations(): supabase-js
callers (`supabase.rpc('get_conversations')`) and the bridge's REST chat
list read the same conversations in the same order, with the same unread
counts and last message; RLS keeps everyone to their own; anon has none."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import both_grant_modes
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.harness import Harness

pytestmark = both_grant_modes


async def rpc_list(db: asyncpg.Connection, user: str, role: str | None = None) -> Any:
    """What `supabase.rpc('get_conversations', { p_role })` returns to `user`."""
    async with acting_as(db, user_claims(user)) as conn:
        raw = await conn.fetchval("select public.get_conversations($1)", role)
    return json.loads(raw)


async def test_rest_and_supabase_js_read_the_same_chat_list(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """After Leo writes to Ava, both the RPC and REST give Ava the same
    conversations newest first, with Leo's message as the campaign chat's
    last message and the same unread counts."""
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "read model")
    rows = await rpc_list(db, AVA)
    status, body = await bridge.request("GET", "/api/conversations", AVA)
    assert status == 200
    rest = body["conversations"]
    assert [r["id"] for r in rows] == [r["id"] for r in rest]
    assert rows[0]["id"] == CAMPAIGN_CONVERSATION
    assert rows[0]["last_message"]["content"] == "read model"
    assert rest[0]["last_message"]["content"] == "read model"
    assert [r["unread_count"] for r in rows] == [r["unread_count"] for r in rest]
    assert rows[0]["unread_count"] >= 1


async def test_each_user_reads_only_their_own_conversations(db: asyncpg.Connection) -> None:
    """Mia's list holds only conversations she takes part in, and none of
    Ava and Leo's campaign chat; narrowing by role keeps to that role."""
    mine = await rpc_list(db, MIA)
    assert mine and all(MIA in (r["brand_owner_id"], r["influencer_id"]) for r in mine)
    assert CAMPAIGN_CONVERSATION not in [r["id"] for r in mine]
    for role, column in (("brand_owner", "brand_owner_id"), ("influencer", "influencer_id")):
        narrowed = await rpc_list(db, AVA, role)
        assert all(r[column] == AVA for r in narrowed)


async def test_anon_has_no_chat_list(db: asyncpg.Connection) -> None:
    """A caller without a session is refused, not given an empty list."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with acting_as(db, None) as conn:
            await conn.fetchval("select public.get_conversations()")

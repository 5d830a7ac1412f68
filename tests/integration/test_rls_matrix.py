"""Row level security, table by table, for the three demo users and anon,
run as the `authenticated` / `anon` roles with `request.jwt.claims` set the
way PostgREST sets them. Each case states what a client would see or be
refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims

# Every case runs on a project with Supabase's default privileges and on one
from tests.conftest import NO_DEFAULT_GRANTS, both_grant_modes
from tests.support.demo import (
    AVA,
    BID,
    BID_CONVERSATION,
    CAMPAIGN_AUTUMN,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)

# Every case runs on a project with Supabase's default privileges and on one
# without them: RLS must decide the same, and the grants must let it.
pytestmark = both_grant_modes

ANON = None
NAMES = {AVA: "ava", LEO: "leo", MIA: "mia", ANON: "anon"}

# What each actor sees of each table after the seed (plus one push token each).
VISIBLE: dict[str, dict[str | None, int]] = {
    "public.users": {AVA: 3, LEO: 2, MIA: 2, ANON: 0},
    "public.conversations": {AVA: 3, LEO: 2, MIA: 1, ANON: 0},
    "public.messages": {AVA: 11, LEO: 9, MIA: 2, ANON: 0},
    "public.bids": {AVA: 1, LEO: 1, MIA: 0, ANON: 0},
    "public.campaigns": {AVA: 2, LEO: 2, MIA: 0, ANON: 0},
    "public.fcm_tokens": {AVA: 1, LEO: 1, MIA: 1, ANON: 0},
    "public.flow_transitions": {AVA: 18, LEO: 18, MIA: 18, ANON: 0},
    "storage.objects": {AVA: 1, LEO: 1, MIA: 1, ANON: 1},
    "storage.buckets": {AVA: 0, LEO: 0, MIA: 0, ANON: 0},
}


async def _give_everyone_a_token(db: asyncpg.Connection) -> None:
    await db.execute(
        "insert into public.fcm_tokens (user_id, token, platform) values"
        " ($1, 'tok-ava', 'ios'), ($2, 'tok-leo', 'android'), ($3, 'tok-mia', 'web')",
        AVA,
        LEO,
        MIA,
    )


def _claims(actor: str | None) -> dict[str, Any] | None:
    return None if actor is None else user_claims(actor)


@pytest.mark.parametrize("table", sorted(VISIBLE))
async def test_select_shows_only_what_belongs_to_the_actor(
    db: asyncpg.Connection, grant_mode: str, table: str
) -> None:
    """Each actor reads exactly the rows of their own conversations, profiles
    and tokens; anon reads nothing but public avatars."""
    await _give_everyone_a_token(db)
    for actor, expected in VISIBLE[table].items():
        if _anon_has_no_grant(grant_mode, actor, table):
            # No default privileges: anon has no grant at all, a clearer "nothing".
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with acting_as(db, None):
                    await db.fetchval(f"select count(*) from {table}")
            continue
        async with acting_as(db, _claims(actor)):
            count = await db.fetchval(f"select count(*) from {table}")
        assert count == expected, f"{NAMES[actor]} sees {count} rows of {table}"


def _anon_has_no_grant(grant_mode: str, actor: str | None, table: str) -> bool:
    """anon is granted nothing in `public` when default privileges are off."""
    return grant_mode == NO_DEFAULT_GRANTS and actor is ANON and table.startswith("public.")


@pytest.mark.parametrize("actor", [AVA, LEO, MIA, ANON], ids=lambda a: NAMES[a])
async def test_outbox_is_invisible_to_clients(db: asyncpg.Connection, actor: str | None) -> None:
    """The bridge's outbox is never readable through the API roles."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with acting_as(db, _claims(actor)):
            await db.fetchval("select count(*) from bridge.outbox")


@dataclass(frozen=True)
class Case:
    name: str
    actor: str | None
    sql: str
    args: tuple[Any, ...]
    # rows affected, or the asyncpg error class expected
    expect: int | type[Exception]


M = "(select id from public.messages where conversation_id = '{c}' and sender_id = '{s}' limit 1)"
AVA_MSG_TO_LEO = M.format(c=CAMPAIGN_CONVERSATION, s=AVA)
LEO_MSG_TO_AVA = M.format(c=CAMPAIGN_CONVERSATION, s=LEO)
DENIED = asyncpg.InsufficientPrivilegeError
CHECK = asyncpg.CheckViolationError

WRITE_CASES = [
    # messages
    Case(
        "participant sends as themselves",
        LEO,
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, 'hi')",
        (CAMPAIGN_CONVERSATION, LEO),
        1,
    ),
    Case(
        "participant sends as the other participant",
        LEO,
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, 'hi')",
        (CAMPAIGN_CONVERSATION, AVA),
        DENIED,
    ),
    Case(
        "outsider sends into a conversation",
        MIA,
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, 'hi')",
        (BID_CONVERSATION, MIA),
        asyncpg.NoDataFoundError,  # as for a missing conversation: ids leak nothing
    ),
    Case(
        "participant forges a system message",
        LEO,
        "insert into public.messages (conversation_id, sender_id, content, message_type)"
        " values ($1, $2, 'Work approved', 'system')",
        (CAMPAIGN_CONVERSATION, LEO),
        DENIED,
    ),
    Case(
        "participant backdates a message",
        LEO,
        "insert into public.messages (conversation_id, sender_id, content, created_at)"
        " values ($1, $2, 'hi', now() - interval '1 year')",
        (CAMPAIGN_CONVERSATION, LEO),
        DENIED,
    ),
    Case(
        "anon sends a message",
        ANON,
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, 'hi')",
        (CAMPAIGN_CONVERSATION, LEO),
        DENIED,
    ),
    Case(
        "receiver marks a message read",
        LEO,
        f"update public.messages set is_read = true where id = {AVA_MSG_TO_LEO}",
        (),
        1,
    ),
    Case(
        "sender marks their own message read",
        LEO,
        f"update public.messages set is_read = true where id = {LEO_MSG_TO_AVA}",
        (),
        0,
    ),
    Case(
        "outsider marks a message read",
        MIA,
        f"update public.messages set is_read = true where id = {AVA_MSG_TO_LEO}",
        (),
        0,
    ),
    Case(
        "receiver edits the content of a message",
        LEO,
        f"update public.messages set content = 'edited' where id = {AVA_MSG_TO_LEO}",
        (),
        DENIED,
    ),
    Case(
        "participant deletes a message",
        AVA,
        f"delete from public.messages where id = {AVA_MSG_TO_LEO}",
        (),
        DENIED,
    ),
    # conversations
    Case(
        "influencer opens a direct conversation with a brand owner",
        LEO,
        "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
        (AVA, LEO),
        1,
    ),
    Case(
        "outsider opens a conversation between two others",
        MIA,
        "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
        (AVA, LEO),
        DENIED,
    ),
    Case(
        "participant opens a bid conversation directly",
        AVA,
        "insert into public.conversations (brand_owner_id, influencer_id, conversation_type)"
        " values ($1, $2, 'bid')",
        (AVA, LEO),
        DENIED,
    ),
    Case(
        "participant moves the flow by hand",
        AVA,
        "update public.conversations set flow_state = 'completed' where id = $1",
        (BID_CONVERSATION,),
        DENIED,
    ),
    Case(
        "participant zeroes an unread counter by hand",
        AVA,
        "update public.conversations set brand_owner_unread_count = 0 where id = $1",
        (BID_CONVERSATION,),
        DENIED,
    ),
    Case(
        "participant deletes a conversation",
        AVA,
        "delete from public.conversations where id = $1",
        (DIRECT_CONVERSATION,),
        DENIED,
    ),
    Case(
        "anon opens a conversation",
        ANON,
        "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
        (AVA, LEO),
        DENIED,
    ),
    # users
    Case(
        "user renames themselves",
        AVA,
        "update public.users set name = 'Ava B.' where id = $1",
        (AVA,),
        1,
    ),
    Case(
        "user renames someone else",
        AVA,
        "update public.users set name = 'Leo?' where id = $1",
        (LEO,),
        0,
    ),
    Case(
        "user changes their own role",
        LEO,
        "update public.users set role = 'brand_owner' where id = $1",
        (LEO,),
        DENIED,
    ),
    Case(
        "user inserts a profile",
        MIA,
        "insert into public.users (id, name, role) values ($1, 'x', 'influencer')",
        (MIA,),
        DENIED,
    ),
    Case("user deletes a profile", MIA, "delete from public.users where id = $1", (MIA,), DENIED),
    Case(
        "anon renames a user",
        ANON,
        "update public.users set name = 'x' where id = $1",
        (AVA,),
        DENIED,
    ),
    # push tokens
    Case(
        "user registers a token for themselves",
        MIA,
        "insert into public.fcm_tokens (user_id, token, platform) values ($1, 'new-tok', 'web')",
        (MIA,),
        1,
    ),
    Case(
        "user registers a token for someone else",
        MIA,
        "insert into public.fcm_tokens (user_id, token, platform) values ($1, 'new-tok', 'web')",
        (AVA,),
        DENIED,
    ),
    Case(
        "user deactivates their own token",
        LEO,
        "update public.fcm_tokens set is_active = false where token = 'tok-leo'",
        (),
        1,
    ),
    Case(
        "user deactivates someone else's token",
        LEO,
        "update public.fcm_tokens set is_active = false where token = 'tok-ava'",
        (),
        0,
    ),
    Case(
        "user deletes their own token",
        AVA,
        "delete from public.fcm_tokens where token = 'tok-ava'",
        (),
        1,
    ),
    Case(
        "user deletes someone else's token",
        AVA,
        "delete from public.fcm_tokens where token = 'tok-mia'",
        (),
        0,
    ),
    Case(
        "anon registers a token",
        ANON,
        "insert into public.fcm_tokens (user_id, token, platform) values ($1, 'anon-tok', 'web')",
        (AVA,),
        DENIED,
    ),
    # bids and campaigns
    Case(
        "influencer bids as themselves",
        LEO,
        "insert into public.bids (campaign_id, brand_owner_id, influencer_id, title)"
        " values ($1, $2, $3, 'Story series')",
        (CAMPAIGN_AUTUMN, AVA, LEO),
        1,
    ),
    Case(
        "influencer bids as another influencer",
        LEO,
        "insert into public.bids (brand_owner_id, influencer_id, title) values ($1, $2, 'x')",
        (AVA, MIA),
        DENIED,
    ),
    Case(
        "brand owner poses as an influencer in a bid",
        AVA,
        "insert into public.bids (brand_owner_id, influencer_id, title) values ($1, $1, 'x')",
        (AVA,),
        CHECK,
    ),
    Case(
        "participant edits a bid",
        AVA,
        "update public.bids set amount = 1 where id = $1",
        (BID,),
        DENIED,
    ),
    Case(
        "brand owner creates a campaign",
        AVA,
        "insert into public.campaigns (brand_owner_id, title) values ($1, 'Winter')",
        (AVA,),
        1,
    ),
    Case(
        "influencer creates a campaign as a brand owner",
        LEO,
        "insert into public.campaigns (brand_owner_id, title) values ($1, 'Winter')",
        (AVA,),
        DENIED,
    ),
    Case(
        "influencer creates a campaign as themselves",
        LEO,
        "insert into public.campaigns (brand_owner_id, title) values ($1, 'Winter')",
        (LEO,),
        CHECK,
    ),
    Case(
        "influencer deletes a campaign they chat about",
        LEO,
        "delete from public.campaigns where id = $1",
        (CAMPAIGN_AUTUMN,),
        0,
    ),
    # storage
    Case(
        "user uploads an avatar into their own folder",
        MIA,
        "insert into storage.objects (bucket_id, name) values ('avatars', $1)",
        (f"{MIA}/me.png",),
        1,
    ),
    Case(
        "user uploads an avatar into someone else's folder",
        MIA,
        "insert into storage.objects (bucket_id, name) values ('avatars', $1)",
        (f"{AVA}/me.png",),
        DENIED,
    ),
    Case(
        "user deletes someone else's avatar",
        AVA,
        "delete from storage.objects where name = $1",
        (f"{LEO}/leo.jpg",),
        0,
    ),
    Case(
        "anon uploads an avatar",
        ANON,
        "insert into storage.objects (bucket_id, name) values ('avatars', $1)",
        (f"{AVA}/me.png",),
        DENIED,
    ),
    # flow rules
    Case(
        "user rewrites a flow rule",
        AVA,
        "update public.flow_transitions set to_state = 'completed'",
        (),
        DENIED,
    ),
]


@pytest.mark.parametrize("case", WRITE_CASES, ids=lambda c: f"{NAMES[c.actor]}: {c.name}")
async def test_writes_are_allowed_or_refused(db: asyncpg.Connection, case: Case) -> None:
    """A write either affects the expected rows or is refused with the
    expected error, and a refused write changes nothing."""
    await _give_everyone_a_token(db)
    before = await _fingerprint(db)
    if isinstance(case.expect, int):
        async with acting_as(db, _claims(case.actor)):
            status = await db.execute(case.sql, *case.args)
        assert int(status.split()[-1]) == case.expect, status
        if case.expect == 0:
            assert await _fingerprint(db) == before
    else:
        with pytest.raises(case.expect):
            async with acting_as(db, _claims(case.actor)):
                await db.execute(case.sql, *case.args)
        assert await _fingerprint(db) == before


async def _fingerprint(db: asyncpg.Connection) -> list[str]:
    """A digest of every table a client could touch."""
    tables = [
        "public.users",
        "public.conversations",
        "public.messages",
        "public.bids",
        "public.campaigns",
        "public.fcm_tokens",
        "public.flow_transitions",
        "storage.objects",
        "bridge.outbox",
    ]
    digests = []
    for table in tables:
        digests.append(
            await db.fetchval(
                "select md5(coalesce(string_agg(t::text, ',' order by t::text), ''))"
                f" from {table} t"
            )
        )
    return digests


@pytest.mark.parametrize("table", sorted(t for t in VISIBLE if t.startswith("public.")))
async def test_service_role_reads_every_public_table(db: asyncpg.Connection, table: str) -> None:
    """The service role (edge functions, operator scripts) reads every table
    of the app, whatever the project's default privileges."""
    await _give_everyone_a_token(db)
    async with acting_as(db, {"role": "service_role"}):
        count = await db.fetchval(f"select count(*) from {table}")
    assert count > 0


async def test_participant_marks_a_conversation_read_through_the_rpc(
    db: asyncpg.Connection,
) -> None:
    """supabase-js `rpc('mark_conversation_read')` works for a participant."""
    async with acting_as(db, _claims(LEO)):
        marked = await db.fetchval(
            "select public.mark_conversation_read($1)", CAMPAIGN_CONVERSATION
        )
    assert marked > 0

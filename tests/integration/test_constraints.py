"""Malformed input is refused by the schema itself with a clear error, and
changes nothing, whichever client wrote it."""

from __future__ import annotations

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA

INSERT = (
    "insert into public.messages (conversation_id, sender_id, content, message_type, media_url,"
    " client_message_id) values ($1, $2, $3, $4, $5, $6)"
)


@pytest.mark.parametrize(
    ("conversation", "content", "message_type", "media_url", "client_id", "error", "says"),
    [
        (
            CAMPAIGN_CONVERSATION,
            "x" * 4001,
            "text",
            None,
            None,
            asyncpg.CheckViolationError,
            "content",
        ),
        (
            CAMPAIGN_CONVERSATION,
            "   ",
            "text",
            None,
            None,
            asyncpg.CheckViolationError,
            "messages_text_not_blank",
        ),
        (
            CAMPAIGN_CONVERSATION,
            "hi",
            "video",
            None,
            None,
            asyncpg.InvalidTextRepresentationError,
            "message_type",
        ),
        (
            CAMPAIGN_CONVERSATION,
            "",
            "image",
            None,
            None,
            asyncpg.CheckViolationError,
            "messages_media_has_url",
        ),
        (
            CAMPAIGN_CONVERSATION,
            "hi",
            "text",
            "u" * 2049,
            None,
            asyncpg.CheckViolationError,
            "media_url",
        ),
        (
            CAMPAIGN_CONVERSATION,
            "hi",
            "text",
            None,
            "c" * 101,
            asyncpg.CheckViolationError,
            "client_message_id",
        ),
        (
            "00000000-0000-4000-8000-000000000000",
            "hi",
            "text",
            None,
            None,
            asyncpg.NoDataFoundError,
            "conversation not found",
        ),
        (
            DIRECT_CONVERSATION,
            "hi",
            "text",
            None,
            None,
            asyncpg.NoDataFoundError,
            "conversation not found",  # the same answer: ids of others' leak nothing
        ),
    ],
    ids=[
        "oversize",
        "blank",
        "bad-enum",
        "image-without-url",
        "oversize-url",
        "oversize-client-id",
        "foreign-conversation",
        "sender-not-participant",
    ],
)
async def test_malformed_messages_are_refused(
    db: asyncpg.Connection,
    conversation: str,
    content: str,
    message_type: str,
    media_url: str | None,
    client_id: str | None,
    error: type[Exception],
    says: str,
) -> None:
    """Even the service role (no RLS) cannot store a malformed message; the
    error names what is wrong, and nothing is written."""
    before = await db.fetchval("select count(*) from public.messages")
    outbox = await db.fetchval("select count(*) from bridge.outbox")
    with pytest.raises(error, match=says):
        await db.execute(INSERT, conversation, LEO, content, message_type, media_url, client_id)
    assert await db.fetchval("select count(*) from public.messages") == before
    assert await db.fetchval("select count(*) from bridge.outbox") == outbox


async def test_client_message_id_makes_retries_idempotent(db: asyncpg.Connection) -> None:
    """The same client_message_id from the same sender is one message; the
    retry is refused by the unique key (the bridge then returns the stored
    message), and another sender may use the same id."""
    async with acting_as(db, user_claims(LEO)):
        await db.execute(INSERT, CAMPAIGN_CONVERSATION, LEO, "hi", "text", None, "retry-1")
    with pytest.raises(asyncpg.UniqueViolationError):
        async with acting_as(db, user_claims(LEO)):
            await db.execute(INSERT, CAMPAIGN_CONVERSATION, LEO, "hi", "text", None, "retry-1")
    async with acting_as(db, user_claims(AVA)):
        await db.execute(INSERT, CAMPAIGN_CONVERSATION, AVA, "hi", "text", None, "retry-1")
    assert (
        await db.fetchval(
            "select count(*) from public.messages where client_message_id = 'retry-1'"
        )
        == 2
    )


async def test_read_message_cannot_become_unread(db: asyncpg.Connection) -> None:
    """Reading is one way; an attempt to unread is refused with a clear error."""
    with pytest.raises(asyncpg.CheckViolationError, match="cannot become unread"):
        await db.execute(
            "update public.messages set is_read = false where conversation_id = $1 and is_read",
            CAMPAIGN_CONVERSATION,
        )


@pytest.mark.parametrize(
    ("sql", "args", "error", "says"),
    [
        (
            "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
            (LEO, MIA),
            asyncpg.CheckViolationError,
            "is not a brand owner",
        ),
        (
            "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
            (AVA, MIA),
            asyncpg.UniqueViolationError,
            "conversations_one_direct_per_pair",
        ),
        (
            "insert into public.conversations (brand_owner_id, influencer_id, conversation_type)"
            " values ($1, $2, 'bid')",
            (AVA, LEO),
            asyncpg.CheckViolationError,
            "conversations_bid_named",
        ),
        (
            "insert into public.fcm_tokens (user_id, token, platform)"
            " values ($1, 't', 'blackberry')",
            (AVA,),
            asyncpg.CheckViolationError,
            "platform",
        ),
        (
            "insert into public.fcm_tokens (user_id, token, platform) values ($1, '', 'ios')",
            (AVA,),
            asyncpg.CheckViolationError,
            "token",
        ),
        (
            "update public.users set name = repeat('n', 121) where id = $1",
            (AVA,),
            asyncpg.CheckViolationError,
            "name",
        ),
        (
            "insert into auth.users (id, email, raw_user_meta_data) values"
            " (gen_random_uuid(), 'x@example.com', '{\"role\": \"admin\"}')",
            (),
            asyncpg.InvalidTextRepresentationError,
            "user_role",
        ),
    ],
    ids=[
        "wrong-role",
        "duplicate-direct",
        "bid-without-bid",
        "bad-platform",
        "empty-token",
        "oversize-name",
        "sign-up-with-bad-role",
    ],
)
async def test_malformed_rows_are_refused(
    db: asyncpg.Connection, sql: str, args: tuple[str, ...], error: type[Exception], says: str
) -> None:
    """Rows that break the domain rules fail with an error naming the rule."""
    with pytest.raises(error, match=says):
        await db.execute(sql, *args)


async def test_sign_up_creates_the_chat_profile(db: asyncpg.Connection) -> None:
    """A new auth.users row (Supabase sign-up) gets its public.users profile
    from the sign-up metadata."""
    user_id = await db.fetchval(
        "insert into auth.users (id, email, raw_user_meta_data) values"
        ' (gen_random_uuid(), \'nia@example.com\', \'{"name": "Nia", "role": "brand_owner"}\')'
        " returning id"
    )
    profile = await db.fetchrow("select name, role from public.users where id = $1", user_id)
    assert dict(profile) == {"name": "Nia", "role": "brand_owner"}


async def test_register_fcm_token_is_idempotent_and_moves_devices(db: asyncpg.Connection) -> None:
    """Registering the same token twice keeps one row; a device that signs
    in as someone else moves its token to the new account."""
    for user in (LEO, LEO, MIA):
        async with acting_as(db, user_claims(user)):
            await db.execute("select public.register_fcm_token('device-1', 'android')")
    rows = await db.fetch(
        "select user_id, is_active from public.fcm_tokens where token = 'device-1'"
    )
    assert [(str(r["user_id"]), r["is_active"]) for r in rows] == [(MIA, True)]

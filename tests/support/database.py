"""Writes and reads straight in Postgres, as supabase-js would (each as its
user, under RLS) or as a test looks (counts, fingerprints, the lease)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from bridge.db import acting_as, user_claims
from tests.support.waits import eventually


async def place_bid(
    db: asyncpg.Connection, influencer: str, brand_owner: str, campaign: str | None = None
) -> str:
    """The influencer bids (as themselves, through RLS); returns the bid id."""
    async with acting_as(db, user_claims(influencer)):
        bid = await db.fetchval(
            "insert into public.bids (campaign_id, brand_owner_id, influencer_id, title)"
            " values ($1, $2, $3, 'Story series') returning id",
            campaign,
            brand_owner,
            influencer,
        )
    return str(bid)


async def send_as(db: asyncpg.Connection, user: str, conversation: str, text: str) -> uuid.UUID:
    """A message written straight into Postgres as `user` (as supabase-js
    would); returns its id."""
    async with acting_as(db, user_claims(user)):
        message_id: uuid.UUID = await db.fetchval(
            "insert into public.messages (conversation_id, sender_id, content)"
            " values ($1, $2, $3) returning id",
            conversation,
            user,
            text,
        )
    return message_id


async def count_messages(db: asyncpg.Connection, *texts: str) -> int:
    """How many stored messages say any of `texts`."""
    return int(
        await db.fetchval("select count(*) from public.messages where content = any($1)", texts)
    )


async def lease_holders(db: asyncpg.Connection) -> int:
    """How many sessions hold the relay lease (an advisory lock)."""
    count: int = await db.fetchval(
        "select count(*) from pg_locks l join pg_stat_activity a using (pid)"
        " where l.locktype = 'advisory' and l.granted"
        " and a.application_name = 'chat-bridge relay lease'"
    )
    return count


async def attach_as(
    db: asyncpg.Connection,
    user: str,
    conversation: str,
    media_url: str,
    message_type: str = "image",
) -> Any:
    """An image or file message naming `media_url`, written straight into
    Postgres as `user` (as supabase-js would); returns its id."""
    async with acting_as(db, user_claims(user)):
        return await db.fetchval(
            "insert into public.messages (conversation_id, sender_id, content, message_type,"
            " media_url) values ($1, $2, '', $3, $4) returning id",
            conversation,
            user,
            message_type,
            media_url,
        )


async def fingerprint(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Everything a bad request could change, in one comparable value."""
    row = await db.fetchrow(
        "select"
        " (select md5(coalesce(string_agg(m::text, ',' order by m.id), ''))"
        "  from public.messages m),"
        " (select md5(string_agg(c::text, ',' order by c.id)) from public.conversations c),"
        " (select md5(coalesce(string_agg(t::text, ',' order by t.id), ''))"
        "  from public.fcm_tokens t),"
        " (select count(*) from bridge.outbox)"
    )
    return tuple(row)


async def relayed(db: asyncpg.Connection) -> None:
    """Until the relay has passed every committed change."""

    async def drained() -> bool:
        return not await db.fetchval("select count(*) from bridge.outbox_pending")

    await eventually(drained, what="outbox drained", interval=0.02)


ATTACHMENTS_BUCKET = "chat-attachments"


async def put_object(conn: asyncpg.Connection, user: str, name: str) -> None:
    """A file row in the attachments bucket, inserted into storage.objects as
    `user` (what Storage does for supabase-js's upload, under its RLS)."""
    async with conn.transaction(), acting_as(conn, user_claims(user)):
        await conn.execute(
            "insert into storage.objects (bucket_id, name, owner_id, metadata)"
            ' values ($1, $2, $3, \'{"size": 10, "mimetype": "image/png"}\')',
            ATTACHMENTS_BUCKET,
            name,
            user,
        )


async def object_visible(conn: asyncpg.Connection, user: str, name: str) -> bool:
    """Whether `user` can see the attachments bucket's file `name` under RLS."""
    async with conn.transaction(), acting_as(conn, user_claims(user)):
        return bool(
            await conn.fetchval(
                "select count(*) from storage.objects where bucket_id = $1 and name = $2",
                ATTACHMENTS_BUCKET,
                name,
            )
        )

"""Storage RLS of the `chat-attachments` bucket, as supabase-js clients meet
it: only a conversation's participants read or add objects under its
folder; nobody else, not across a block, not outside a conversation's
folder, and no client replaces or deletes one. Run here on the embedded
default's mirror of Storage's schema, and in test_production.py on a
database built from Supabase Storage's own migrations."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.database import ATTACHMENTS_BUCKET, attach_as, object_visible, put_object
from tests.support.demo import AVA, BID_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA

BUCKET = ATTACHMENTS_BUCKET


def _path(conversation: str, name: str = "photo.png") -> str:
    return f"{conversation}/{uuid.uuid4()}/{name}"


async def check_attachment_policies(conn: asyncpg.Connection) -> None:
    """The whole matrix on one database (`conn` may switch roles)."""
    bucket = await conn.fetchrow(
        "select public, file_size_limit, allowed_mime_types from storage.buckets where id = $1",
        BUCKET,
    )
    assert bucket is not None and bucket["public"] is False
    assert bucket["file_size_limit"] == 10 * 1024 * 1024
    assert "application/pdf" in bucket["allowed_mime_types"]

    mine = _path(BID_CONVERSATION)
    await put_object(conn, LEO, mine)  # a participant adds a file to his conversation
    assert await object_visible(conn, LEO, mine) and await object_visible(conn, AVA, mine)
    assert not await object_visible(conn, MIA, mine)  # not hers

    refused = [
        (MIA, _path(BID_CONVERSATION)),  # someone else's conversation
        (LEO, f"not-a-conversation/{uuid.uuid4()}/x.png"),
        (LEO, _path(str(uuid.uuid4()))),  # a conversation that does not exist
        (LEO, "x.png"),
    ]
    for user, name in refused:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await put_object(conn, user, name)

    for user in (LEO, AVA):  # no replacing or deleting someone's file
        async with conn.transaction(), acting_as(conn, user_claims(user)):
            changed = await conn.execute(
                "update storage.objects set name = name || '.x' where bucket_id = $1", BUCKET
            )
            assert changed == "UPDATE 0"
        # Supabase Storage refuses direct deletes outright (its migration
        # 0055); the embedded mirror has no such trigger: no policy, no row.
        try:
            async with conn.transaction(), acting_as(conn, user_claims(user)):
                gone = await conn.execute(
                    "delete from storage.objects where bucket_id = $1", BUCKET
                )
        except asyncpg.InsufficientPrivilegeError:
            gone = "DELETE 0"
        assert gone == "DELETE 0"
    assert await object_visible(conn, AVA, mine)

    # A block stops new files both ways; what was shared stays readable.
    await conn.execute(
        "insert into public.user_blocks (blocker_id, blocked_id) values ($1, $2)", AVA, LEO
    )
    try:
        for user in (LEO, AVA):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await put_object(conn, user, _path(BID_CONVERSATION))
        assert await object_visible(conn, LEO, mine)
    finally:
        await conn.execute("delete from public.user_blocks where blocker_id = $1", AVA)


async def test_attachment_policies_on_the_embedded_storage_schema(db: asyncpg.Connection) -> None:
    """Participants only, their conversation's folder only, no overwrites,
    nothing across a block."""
    await check_attachment_policies(db)


async def test_messages_keep_attachment_paths_in_their_conversation(
    db: asyncpg.Connection,
) -> None:
    """supabase-js inserts face the same rule as the bridge: a storage path
    in media_url must be of the message's conversation; full URLs pass."""
    ok = _path(DIRECT_CONVERSATION, "a.pdf")
    await attach_as(db, AVA, DIRECT_CONVERSATION, ok, "file")
    await attach_as(db, AVA, DIRECT_CONVERSATION, "https://cdn.example.com/x.png")
    with pytest.raises(asyncpg.CheckViolationError, match="media_url_in_conversation"):
        await attach_as(db, AVA, DIRECT_CONVERSATION, _path(BID_CONVERSATION, "a.pdf"), "file")

"""The transactional outbox: committed changes leave exactly one row each,
with everything needed to route them; rolled-back changes leave none; the
doorbell rings only while a bridge sleeps."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.database import count_messages, send_as
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO, MIA


async def pending(db: asyncpg.Connection) -> list[asyncpg.Record]:
    rows = await db.fetch(
        "select topic, conversation_id, recipients, payload from bridge.outbox_pending order by id"
    )
    return [
        {
            **dict(r),
            "payload": json.loads(r["payload"]),
            "recipients": sorted(str(x) for x in r["recipients"]),
        }
        for r in rows
    ]


async def test_committed_message_leaves_one_routable_row(db: asyncpg.Connection) -> None:
    """A message insert writes one message.created row naming both
    participants, the message, the sender's profile and the receiver's new
    unread count."""
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "Draft is ready")
    rows = await pending(db)
    assert [r["topic"] for r in rows] == ["message.created"]
    row = rows[0]
    assert row["recipients"] == sorted([AVA, LEO])
    assert str(row["conversation_id"]) == CAMPAIGN_CONVERSATION
    payload = row["payload"]
    assert payload["message"]["content"] == "Draft is ready"
    assert payload["message"]["sender_id"] == LEO
    assert payload["sender"] == {
        "id": LEO,
        "name": "Leo Creator",
        "role": "influencer",
        "profile_image_url": f"{LEO}/leo.jpg",
    }
    conversation = payload["conversation"]
    assert conversation["last_message_id"] == payload["message"]["id"]
    assert conversation["brand_owner_unread_count"] == 1
    assert conversation["influencer_unread_count"] == 1


async def test_rolled_back_message_leaves_nothing(db: asyncpg.Connection) -> None:
    """A message whose transaction rolls back is never announced."""
    with pytest.raises(RuntimeError):
        async with acting_as(db, user_claims(LEO)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'oops')",
                CAMPAIGN_CONVERSATION,
                LEO,
            )
            raise RuntimeError("client gave up")
    assert await pending(db) == []
    assert await count_messages(db, "oops") == 0


async def test_outbox_row_is_invisible_until_commit(db: asyncpg.Connection, db_dsn: str) -> None:
    """The bridge cannot see a change before it commits."""
    other = await asyncpg.connect(db_dsn)
    try:
        async with acting_as(db, user_claims(LEO)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'soon')",
                CAMPAIGN_CONVERSATION,
                LEO,
            )
            assert await other.fetchval("select count(*) from bridge.outbox_pending") == 0
        assert await other.fetchval("select count(*) from bridge.outbox_pending") == 1
    finally:
        await other.close()


async def test_marking_many_read_is_one_row_with_the_ids(db: asyncpg.Connection) -> None:
    """Reading a whole conversation is one messages.read row carrying the
    message ids, the reader, and the reader's unread count of zero."""
    first = await send_as(db, AVA, CAMPAIGN_CONVERSATION, "one")
    second = await send_as(db, AVA, CAMPAIGN_CONVERSATION, "two")
    await db.execute("select bridge.skip_pending()")
    async with acting_as(db, user_claims(LEO)):
        marked = await db.fetchval(
            "select public.mark_conversation_read($1)", CAMPAIGN_CONVERSATION
        )
    assert marked == 3  # the seed left one unread message for Leo
    rows = await pending(db)
    assert [r["topic"] for r in rows] == ["messages.read"]
    payload = rows[0]["payload"]
    assert payload["reader_id"] == LEO
    assert payload["sender_id"] == AVA
    assert payload["message_ids"][-2:] == [str(first), str(second)]
    assert payload["conversation"]["influencer_unread_count"] == 0
    assert payload["read_at"] is not None


async def test_reading_up_to_a_message_leaves_later_ones_unread(db: asyncpg.Connection) -> None:
    """mark_conversation_read with a message id reads that message and the
    earlier ones only."""
    first = await send_as(db, AVA, CAMPAIGN_CONVERSATION, "one")
    await send_as(db, AVA, CAMPAIGN_CONVERSATION, "two")
    async with acting_as(db, user_claims(LEO)):
        await db.fetchval(
            "select public.mark_conversation_read($1, $2)", CAMPAIGN_CONVERSATION, first
        )
    unread = await db.fetchval(
        "select influencer_unread_count from public.conversations where id = $1",
        CAMPAIGN_CONVERSATION,
    )
    assert unread == 1


async def test_flow_step_announces_state_then_message(db: asyncpg.Connection) -> None:
    """A flow step leaves conversation.state_changed (with the previous
    state) followed by the system message."""
    async with acting_as(db, user_claims(AVA)):
        await db.execute("select public.apply_flow_action($1, 'confirm')", BID_CONVERSATION)
    rows = await pending(db)
    assert [r["topic"] for r in rows] == ["conversation.state_changed", "message.created"]
    changed = rows[0]["payload"]
    assert changed["previous"]["flow_state"] == "brand_owner_confirming"
    assert changed["conversation"]["flow_state"] == "work_in_progress"
    assert rows[1]["payload"]["message"]["message_type"] == "system"
    assert rows[1]["payload"]["conversation"]["flow_state"] == "work_in_progress"


async def test_new_conversation_and_profile_change_are_announced(db: asyncpg.Connection) -> None:
    """Opening a conversation and renaming oneself reach the people concerned:
    a profile change goes to the user and all their partners, nobody else."""
    async with acting_as(db, user_claims(LEO)):
        await db.execute(
            "insert into public.conversations (brand_owner_id, influencer_id) values ($1, $2)",
            AVA,
            LEO,
        )
    async with acting_as(db, user_claims(MIA)):
        await db.execute("update public.users set name = 'Mia M.' where id = $1", MIA)
    rows = await pending(db)
    assert [r["topic"] for r in rows] == ["conversation.created", "profile.updated"]
    assert rows[0]["payload"]["influencer"]["name"] == "Leo Creator"
    assert rows[1]["recipients"] == sorted([MIA, AVA])
    assert rows[1]["payload"]["user"]["name"] == "Mia M."


async def test_unchanged_profile_update_is_silent(db: asyncpg.Connection) -> None:
    """Touching a profile without changing what others see announces nothing."""
    await db.execute("update public.users set last_seen_at = now() where id = $1", MIA)
    assert await pending(db) == []


async def _notified(conn: asyncpg.Connection, action: object, within: float) -> bool:
    """Whether a NOTIFY on bridge_outbox arrives within `within` s of `action`."""
    got: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(*args: object) -> None:
        got.put_nowait(str(args[3]))

    await conn.add_listener("bridge_outbox", on_notify)
    try:
        await action  # type: ignore[misc]
        try:
            await asyncio.wait_for(got.get(), within)
            return True
        except TimeoutError:
            return False
    finally:
        await conn.remove_listener("bridge_outbox", on_notify)


async def test_doorbell_rings_only_when_armed(db: asyncpg.Connection, db_dsn: str) -> None:
    """Writers NOTIFY only while a bridge has armed the doorbell (is asleep);
    a busy bridge costs writers no NOTIFY at all."""
    listener = await asyncpg.connect(db_dsn)
    try:
        await db.execute("update bridge.doorbell set armed = false")
        assert not await _notified(listener, send_as(db, LEO, CAMPAIGN_CONVERSATION, "quiet"), 0.5)
        await db.execute("update bridge.doorbell set armed = true")
        # Waited for as long as it takes on a busy machine: it comes, or the test fails.
        assert await _notified(listener, send_as(db, LEO, CAMPAIGN_CONVERSATION, "ring"), 10)
    finally:
        await listener.close()

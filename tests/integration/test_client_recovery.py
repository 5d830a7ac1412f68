"""Client recovery: a client that was away asks for what it missed with the
last event_id it saw, and gets those events in order, only its own; or a
clear "resync" when the gap reaches past the kept history."""

from __future__ import annotations

import asyncpg

from bridge.db import acting_as, user_claims
from tests.support.database import relayed, send_as
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.harness import Harness


async def test_reconnecting_client_gets_what_it_missed_in_order(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Leo saw one message, went away, three more came and the flow moved;
    after reconnecting, `sync` replays exactly those, in commit order."""
    leo = await bridge.client(LEO)
    await leo.call("join_global_updates", LEO)
    await send_as(db, AVA, CAMPAIGN_CONVERSATION, "seen live")
    seen = await leo.wait_for("new_message")
    await leo.close()

    for n in range(3):
        await send_as(db, AVA, CAMPAIGN_CONVERSATION, f"missed {n}")
    await send_as(db, MIA, "c0000000-0000-4000-8000-000000000003", "not for Leo")
    async with acting_as(db, user_claims(AVA)):
        await db.execute("select public.apply_flow_action($1, 'confirm')", BID_CONVERSATION)
    await relayed(db)

    back = await bridge.client(LEO)
    await back.call("join_global_updates", LEO)
    ack = await back.call("sync", {"lastEventId": seen["event_id"]})
    assert ack["ok"] and ack["resync"] is False and ack["replayed"] > 0
    messages = [d["message"]["content"] for d in back.received("new_message")]
    assert messages == [
        "missed 0",
        "missed 1",
        "missed 2",
        "The brand owner confirmed the bid. Work can start.",
    ]
    assert back.received("conversation_state_changed")[0]["flow_state"] == "work_in_progress"
    ids = [d["event_id"] for _, d in back.events if isinstance(d, dict) and "event_id" in d]
    assert ids == sorted(ids) and min(ids) > seen["event_id"]
    assert ack["lastEventId"] == max(ids)
    assert all("not for Leo" not in str(d) for _, d in back.events)
    again = await back.call("sync", {"lastEventId": ack["lastEventId"]})
    # Nothing new for Leo (the replay counted as delivery: Ava's receipts).
    assert again["replayed"] == 0 and again["lastEventId"] >= ack["lastEventId"]


async def test_gap_past_the_kept_history_asks_for_a_resync(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """When the events after lastEventId were pruned, the answer is resync."""
    leo = await bridge.client(LEO)
    await send_as(db, AVA, CAMPAIGN_CONVERSATION, "new")
    await leo.wait_for("new_message")
    await db.execute("delete from bridge.outbox where id <= 10")  # what pruning does
    ack = await leo.call("sync", {"lastEventId": 3})
    assert ack["resync"] is True and ack["replayed"] == 0
    assert ack["lastEventId"] == await db.fetchval("select max(id) from bridge.outbox")


async def test_sync_shows_a_stranger_nothing_of_others(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Mia replaying from the start gets only her own conversation's events."""
    await send_as(db, AVA, CAMPAIGN_CONVERSATION, "Ava to Leo")
    await send_as(db, AVA, "c0000000-0000-4000-8000-000000000003", "Ava to Mia")
    await relayed(db)
    mia = await bridge.client(MIA)
    await mia.call("join_global_updates", MIA)
    ack = await mia.call("sync", {"lastEventId": 16})
    assert ack["ok"] and ack["resync"] is False
    assert [d["message"]["content"] for d in mia.received("new_message")] == ["Ava to Mia"]


async def test_bad_last_event_id_is_refused(bridge: Harness) -> None:
    """lastEventId must be a whole number that can be an event id: not a
    superscript digit, nothing past the outbox's bigint, no 5,000 digits."""
    leo = await bridge.client(LEO)
    for bad in (None, -1, "abc", 1.5, {"lastEventId": True}, "²", 2**63, "9" * 5000, "\u0661"):
        ack = await leo.call("sync", bad)
        assert ack["ok"] is False and ack["error"]["field"] == "lastEventId", (bad, ack)
        assert ack["error"]["code"] == "invalid_field"

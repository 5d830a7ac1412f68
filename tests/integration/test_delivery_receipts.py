"""Delivery receipts with real clients: the receiver's device acknowledges
`new_message` (or fetches the message over REST or `sync`) and the sender
hears `message_delivered`, distinct from seen; delivered and seen times per
message in REST history and in the chat list's last message; bad
acknowledgements are refused and change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import both_grant_modes
from tests.support.database import fingerprint, relayed
from tests.support.demo import ABSENT, AVA, CAMPAIGN_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA
from tests.support.harness import Harness, about, chat_entry, page, seed_client, socket_send
from tests.support.waits import QUIET

pytestmark = both_grant_modes


def last_of(messages: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    [message] = [m for m in messages if m["id"] == message_id]
    return message


async def test_the_receivers_ack_reaches_the_sender_before_seen(bridge: Harness) -> None:
    """Leo's message arrives on Ava's device, which acks it: Leo hears
    message_delivered naming the message and Ava; REST and the chat list
    show delivered_at and no read_at yet; once Ava reads it, read_at too.
    A second ack changes nothing and is not announced again."""
    ava, leo = await seed_client(bridge, AVA), await seed_client(bridge, LEO)
    await leo.call("join_conversation", CAMPAIGN_CONVERSATION)
    message_id = await socket_send(leo, "Contract attached")
    arrived = await ava.wait_for("new_message", lambda d: d["message"]["id"] == message_id)
    assert arrived["message"]["delivered_at"] is None

    ack = await ava.call("message_delivered", {"messageIds": [message_id]})
    assert ack == {"ok": True, "delivered": 1}
    delivered = await leo.wait_for("message_delivered", about(CAMPAIGN_CONVERSATION))
    assert delivered["messageIds"] == [message_id] and delivered["userId"] == AVA
    assert delivered["timestamp"] and delivered["event_id"]

    mine = last_of(await page(bridge, LEO, CAMPAIGN_CONVERSATION), message_id)
    assert mine["delivered_at"] and mine["read_at"] is None and mine["is_read"] is False
    entry = await chat_entry(bridge, LEO, CAMPAIGN_CONVERSATION)
    assert entry["last_message"]["id"] == message_id
    assert entry["last_message"]["delivered_at"] and entry["last_message"]["read_at"] is None

    again = await ava.call("message_delivered", message_id)
    assert again == {"ok": True, "delivered": 0}
    await ava.call("mark_seen", {"messageId": message_id})
    await leo.wait_for("message_seen", lambda d: d["messageId"] == message_id)
    await asyncio.sleep(QUIET)
    assert len([d for d in leo.received("message_delivered") if d["userId"] == AVA]) == 1
    entry = await chat_entry(bridge, LEO, CAMPAIGN_CONVERSATION)
    assert entry["last_message"]["read_at"] >= entry["last_message"]["delivered_at"]


async def test_seen_without_an_ack_counts_as_delivered(bridge: Harness) -> None:
    """A client that never acks: reading the message sets delivered_at to
    the read time, and the sender hears message_seen only."""
    leo = await seed_client(bridge, LEO)
    ava = await seed_client(bridge, AVA)
    message_id = await socket_send(leo, "Read me")
    await ava.wait_for("new_message", lambda d: d["message"]["id"] == message_id)
    await ava.call("mark_seen", {"messageId": message_id})
    await leo.wait_for("message_seen", lambda d: d["messageId"] == message_id)
    mine = last_of(await page(bridge, LEO, CAMPAIGN_CONVERSATION), message_id)
    assert mine["delivered_at"] == mine["read_at"] is not None
    await asyncio.sleep(QUIET)
    assert leo.received("message_delivered") == []


async def test_fetching_over_rest_is_delivery(bridge: Harness) -> None:
    """Ava's app loads the conversation over REST: Leo's new messages in the
    page count as delivered, in one message_delivered; Leo loading the same
    page marks nothing (his own messages)."""
    leo = await seed_client(bridge, LEO)
    ids = [await socket_send(leo, f"Point {n}") for n in range(2)]
    await page(bridge, LEO, CAMPAIGN_CONVERSATION)
    await asyncio.sleep(QUIET)
    assert leo.received("message_delivered") == []
    await page(bridge, AVA, CAMPAIGN_CONVERSATION)
    delivered = await leo.wait_for("message_delivered", about(CAMPAIGN_CONVERSATION))
    assert delivered["messageIds"] == ids
    history = await page(bridge, LEO, CAMPAIGN_CONVERSATION)
    assert all(last_of(history, i)["delivered_at"] for i in ids)


async def test_sync_after_a_reconnect_is_delivery(bridge: Harness, db: asyncpg.Connection) -> None:
    """Ava was offline while Leo wrote; her `sync` replays the message to her
    device, and Leo hears it was delivered."""
    leo = await seed_client(bridge, LEO)
    ava = await seed_client(bridge, AVA)
    marker = await socket_send(leo, "before the gap")
    seen = await ava.wait_for("new_message", lambda d: d["message"]["id"] == marker)
    await ava.close()
    missed = await socket_send(leo, "while you were away")
    await relayed(db)
    back = await seed_client(bridge, AVA)
    ack = await back.call("sync", {"lastEventId": seen["event_id"]})
    assert ack["ok"] and ack["replayed"] > 0
    delivered = await leo.wait_for("message_delivered", lambda d: missed in d["messageIds"])
    assert delivered["userId"] == AVA


async def test_sync_replays_an_unsent_message_as_its_tombstone(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Leo wrote and unsent while Ava was away: her `sync` gets new_message
    and message_deleted for it, both without the text."""
    ava = await seed_client(bridge, AVA)
    leo = await seed_client(bridge, LEO)
    marker = await socket_send(leo, "before the gap")
    seen = await ava.wait_for("new_message", lambda d: d["message"]["id"] == marker)
    await ava.close()
    gone = await socket_send(leo, "my password is hunter2")
    assert (await leo.call("unsend_message", gone))["ok"]
    await relayed(db)
    back = await seed_client(bridge, AVA)
    assert (await back.call("sync", {"lastEventId": seen["event_id"]}))["ok"]
    [replayed] = [d for d in back.received("new_message") if d["message"]["id"] == gone]
    assert replayed["message"]["content"] == "" and replayed["message"]["deleted_at"]
    assert back.received("message_deleted")[0]["message_id"] == gone
    assert "hunter2" not in str(back.events)


@pytest.mark.parametrize(
    ("who", "payload", "code"),
    [
        ("leo", "own", "forbidden"),
        ("mia", "theirs", "not_found"),
        ("leo", "foreign", "not_found"),
        ("ava", "absent", "not_found"),
        ("ava", "mixed", "not_found"),
        ("ava", {"messageIds": "nope"}, "invalid_field"),
        ("ava", {"messageIds": [1, 2]}, "invalid_field"),
        ("ava", {"messageIds": []}, "invalid_field"),
        ("ava", 42, "invalid_field"),
    ],
    ids=[
        "own",
        "outsider",
        "foreign-id",
        "absent-id",
        "one-absent-of-two",
        "junk",
        "numbers",
        "empty",
        "int",
    ],
)
async def test_bad_acks_are_refused_and_mark_nothing(
    bridge: Harness, db: asyncpg.Connection, who: str, payload: Any, code: str
) -> None:
    """Your own message, someone else's conversation, an id you cannot see
    (alone or with a good one), wrong types: a clear error, nothing marked."""
    leo = await seed_client(bridge, LEO)
    message_id = await socket_send(leo, "Ack me properly")
    foreign = await db.fetchval(
        "select id::text from public.messages where conversation_id = $1 limit 1",
        DIRECT_CONVERSATION,
    )
    named = {
        "own": {"messageIds": [message_id]},
        "theirs": {"messageIds": [message_id]},
        "foreign": {"messageIds": [foreign]},  # Ava and Mia's conversation
        "absent": {"messageIds": [ABSENT]},
        "mixed": {"messageIds": [message_id, ABSENT]},
    }
    clients = {
        "leo": leo,
        "ava": await seed_client(bridge, AVA),
        "mia": await seed_client(bridge, MIA),
    }
    before = await fingerprint(db)
    ack = await clients[who].call(
        "message_delivered", named[payload] if isinstance(payload, str) else payload
    )
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert await fingerprint(db) == before


async def test_rest_and_supabase_js_acknowledgements(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """POST /api/messages/delivered acks as the socket does (and refuses the
    sender's own); a supabase-js client may set delivered_at itself: the
    database's clock counts, the first time only, never the sender's."""
    leo = await seed_client(bridge, LEO)
    first, second = await socket_send(leo, "one"), await socket_send(leo, "two")
    status, body = await bridge.request(
        "POST", "/api/messages/delivered", AVA, json={"message_ids": [first]}
    )
    assert (status, body) == (200, {"ok": True, "delivered": 1})
    status, body = await bridge.request(
        "POST", "/api/messages/delivered", LEO, json={"message_ids": [second]}
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")
    await leo.wait_for("message_delivered", lambda d: d["messageIds"] == [first])

    async with acting_as(db, user_claims(LEO)):
        await db.execute("update public.messages set delivered_at = now() where id = $1", second)
    assert (
        await db.fetchval("select delivered_at from public.messages where id = $1", second) is None
    )
    async with acting_as(db, user_claims(AVA)):
        await db.execute(
            "update public.messages set delivered_at = '2001-01-01' where id = $1", second
        )
    stamped = await db.fetchval("select delivered_at from public.messages where id = $1", second)
    assert stamped is not None and stamped.year > 2001
    await leo.wait_for("message_delivered", lambda d: d["messageIds"] == [second])
    async with acting_as(db, user_claims(AVA)):
        await db.execute("update public.messages set delivered_at = null where id = $1", second)
    assert (
        await db.fetchval("select delivered_at from public.messages where id = $1", second)
        == stamped
    )

"""Block and report with real clients: a block stops messages both ways on
every path (socket, REST, supabase-js under RLS), hides typing and presence
across it, keeps the history; reports reach moderators only."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.database import count_messages, fingerprint
from tests.support.demo import AVA, BID_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA
from tests.support.harness import Client, Harness, send_payload


async def count(db: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await db.fetchval(sql, *args))


async def test_a_block_stops_messages_both_ways_and_keeps_history(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Ava blocks Leo: his socket send and her REST send are answered
    `blocked`, a supabase-js insert is refused by the database, nothing is
    stored; both still read their history; after unblocking they chat again."""
    ava, leo = await bridge.client(AVA), await bridge.client(LEO)
    sent = await leo.call("send_message", send_payload(BID_CONVERSATION, "before the block"))
    assert sent["ok"]
    ack = await ava.call("block_user", {"userId": LEO})
    assert ack["ok"] and ack["block"]["user_id"] == LEO
    again = await ava.call("block_user", LEO)  # idempotent, a bare id works too
    assert again["block"]["created_at"] == ack["block"]["created_at"]

    refused = await leo.call("send_message", send_payload(BID_CONVERSATION, "while blocked"))
    assert refused["ok"] is False and refused["error"]["code"] == "blocked"
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        AVA,
        json={"conversation_id": BID_CONVERSATION, "message": "while blocked"},
    )
    assert status == 403 and body["error"]["code"] == "blocked"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with acting_as(db, user_claims(LEO)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'while blocked')",
                BID_CONVERSATION,
                LEO,
            )
    assert await count_messages(db, "while blocked") == 0
    for user in (AVA, LEO):
        status, page = await bridge.request(
            "GET", f"/api/conversations/{BID_CONVERSATION}/messages", user
        )
        assert status == 200
        assert "before the block" in [m["content"] for m in page["messages"]]
    # Ava's conversation with Mia is untouched.
    assert (await ava.call("send_message", send_payload(DIRECT_CONVERSATION, "hi Mia")))["ok"]

    status, listed = await bridge.request("GET", "/api/blocks", AVA)
    assert status == 200 and [b["user_id"] for b in listed["blocks"]] == [LEO]
    status, listed = await bridge.request("GET", "/api/blocks", LEO)
    assert listed["blocks"] == []  # the blocked side cannot read who blocked them

    status, body = await bridge.request("DELETE", f"/api/blocks/{LEO}", AVA)
    assert status == 200 and body["unblocked"] is True
    sent = await leo.call("send_message", send_payload(BID_CONVERSATION, "after the unblock"))
    assert sent["ok"]


async def test_neither_typing_nor_presence_crosses_a_block(bridge: Harness) -> None:
    """After Ava blocks Leo each sees the other go offline, his typing never
    reaches her, her chat list shows him offline and blocked, and his
    reconnect is not announced to her."""
    ava, leo = await bridge.client(AVA), await bridge.client(LEO)
    for client in (ava, leo):
        assert (await client.call("join_conversation", BID_CONVERSATION))["ok"]
    status, _ = await bridge.request("POST", "/api/blocks", AVA, json={"user_id": LEO})
    assert status == 201
    await ava.wait_for(
        "user_status_update", lambda d: d["user_id"] == LEO and d["status"] == "offline"
    )
    await leo.wait_for(
        "user_status_update", lambda d: d["user_id"] == AVA and d["status"] == "offline"
    )

    ava.events.clear()
    assert (await leo.call("typing_start", {"conversationId": BID_CONVERSATION}))["ok"]
    # Ava's socket gets packets in order: anything relayed before this ack
    # would have arrived first.
    joined = await ava.call("join_conversation", BID_CONVERSATION)
    assert joined["partner"]["status"] == "offline"
    assert not ava.received("user_typing") and not ava.received("typing_status_update")

    status, listed = await bridge.request("GET", "/api/conversations", AVA)
    row = next(c for c in listed["conversations"] if c["id"] == BID_CONVERSATION)
    assert row["is_online"] is False and row["blocked_by_me"] is True and row["blocked"] is True
    status, listed = await bridge.request("GET", "/api/conversations", LEO)
    row = next(c for c in listed["conversations"] if c["id"] == BID_CONVERSATION)
    assert row["blocked_by_me"] is False and row["blocked"] is True

    await leo.close()
    leo_again = await bridge.client(LEO)
    assert (await leo_again.call("join", LEO))["onlineUsers"] == []
    marker = await ava.call("join", AVA)
    assert LEO not in marker["onlineUsers"]
    assert not [
        e
        for e in ava.received("user_status_update")
        if e["user_id"] == LEO and e["status"] == "online"
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"userId": AVA}, "invalid_field"),  # oneself
        ({"userId": "not-a-uuid"}, "invalid_field"),
        ({}, "missing_field"),
        (42, "invalid_payload"),
        ({"userId": str(uuid.uuid4())}, "not_found"),
    ],
)
async def test_bad_blocks_change_nothing(
    bridge: Harness, db: asyncpg.Connection, payload: Any, code: str
) -> None:
    """A block of oneself, of a malformed or unknown id is refused with a
    clear code, and nothing changes."""
    ava = await bridge.client(AVA)
    before = await fingerprint(db)
    ack = await ava.call("block_user", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert await count(db, "select count(*) from public.user_blocks") == 0
    assert await fingerprint(db) == before


async def report_rows(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await db.fetch("select * from public.reports order by created_at"))


async def test_a_report_reaches_moderators_only(bridge: Harness, db: asyncpg.Connection) -> None:
    """Leo reports Ava's message: acknowledged with an id, stored with the
    text for moderators (the service role), unreadable by any client, and
    Ava hears nothing; the same report again answers the same id. A user
    report over REST works the same way."""
    ava, leo = await bridge.client(AVA), await bridge.client(LEO)
    sent = await ava.call("send_message", send_payload(BID_CONVERSATION, "buy followers here"))
    message_id = sent["message"]["id"]
    ava.events.clear()
    ack = await leo.call(
        "report", {"messageId": message_id, "reason": "spam", "details": "a scam link"}
    )
    assert ack["ok"] and uuid.UUID(ack["reportId"])
    again = await leo.call("report", {"messageId": message_id, "reason": "spam"})
    assert again["reportId"] == ack["reportId"]
    rows = await report_rows(db)
    assert len(rows) == 1
    assert str(rows[0]["reported_user_id"]) == AVA and rows[0]["reason"] == "spam"
    assert rows[0]["message_content"] == "buy followers here"

    status, body = await bridge.request(
        "POST", "/api/reports", LEO, json={"user_id": AVA, "reason": "harassment"}
    )
    assert status == 201 and body["report_id"] != ack["reportId"]
    for user in (AVA, LEO):
        async with acting_as(db, user_claims(user)):
            assert await db.fetch("select * from public.reports") == []
    async with acting_as(db, {"role": "service_role"}):
        assert len(await db.fetch("select * from public.reports")) == 2
    await ava.call("join", AVA)  # a round trip: nothing about the report came before it
    assert [e for e, _ in ava.events if "report" in e] == []


@pytest.mark.parametrize(
    ("user", "payload", "code"),
    [
        (LEO, {"reason": "spam"}, "missing_field"),
        (LEO, {"messageId": "x", "userId": AVA, "reason": "spam"}, "missing_field"),
        (LEO, {"userId": AVA, "reason": "boring"}, "invalid_field"),
        (LEO, {"userId": AVA, "reason": "spam", "details": "x" * 1001}, "too_long"),
        (LEO, {"userId": LEO, "reason": "spam"}, "invalid_request"),  # oneself
        (LEO, {"userId": MIA, "reason": "spam"}, "not_found"),  # shares no conversation
        (MIA, {"messageId": "own", "reason": "spam"}, "not_found"),  # someone else's chat
        (AVA, {"messageId": "own", "reason": "spam"}, "invalid_request"),  # her own message
    ],
)
async def test_bad_reports_change_nothing(
    bridge: Harness, db: asyncpg.Connection, user: str, payload: dict[str, Any], code: str
) -> None:
    """Every malformed or foreign report gets a clear code and stores nothing."""
    ava = await bridge.client(AVA)
    sent = await ava.call("send_message", send_payload(BID_CONVERSATION, "a message of Ava's"))
    if payload.get("messageId") == "own":
        payload = {**payload, "messageId": sent["message"]["id"]}
    client: Client = ava if user == AVA else await bridge.client(user)
    before = await fingerprint(db)
    ack = await client.call("report", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert await report_rows(db) == []
    assert await fingerprint(db) == before

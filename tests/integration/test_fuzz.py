"""A fuzz pass: every client event and every endpoint fed malformed
payloads. Each gets an error answer, the daemon stays up, the database is
unchanged, and normal traffic still flows afterwards."""

from __future__ import annotations

import asyncpg

from bridge.server import CLIENT_EVENTS
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import Harness

EVENTS = list(CLIENT_EVENTS)

# Leo has nothing unread in the bid conversation, so even a mark_seen that
# happens to be well-formed changes nothing.
JUNK: list[object] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "not-a-uuid",
    [],
    [BID_CONVERSATION],
    {},
    {"conversationId": None},
    {"conversationId": 5},
    {"conversationId": "' or 1=1 --"},
    {"conversationId": BID_CONVERSATION, "message": {"nested": True}},
    {"conversationId": BID_CONVERSATION, "message": None, "mediaUrl": 3},
    {"conversationId": BID_CONVERSATION, "message": "x" * 100_000},
    {"conversationId": BID_CONVERSATION, "message": "\x00"},
    {"conversationId": BID_CONVERSATION, "mediaUrl": "../../etc/passwd", "messageType": "file"},
    {"messageId": "00000000-0000-4000-8000-000000000000"},
    {"userId": AVA},
    {"status": "invisible"},
    {"token": 12},
    {"a": {"b": {"c": {"d": [1, 2, {"e": None}]}}}},
]

ENDPOINTS = [
    ("POST", "/api/messages/send"),
    ("POST", "/api/messages/mark-seen"),
    ("POST", "/api/messages/delivered"),
    ("POST", "/api/fcm-tokens"),
    ("POST", "/test-message"),
]


async def fingerprint(db: asyncpg.Connection) -> tuple[object, ...]:
    row = await db.fetchrow(
        "select (select count(*) from public.messages) as m,"
        " (select count(*) from public.fcm_tokens) as t,"
        " (select count(*) from bridge.outbox) as o,"
        " (select sum(brand_owner_unread_count + influencer_unread_count)"
        "  from public.conversations) as u"
    )
    return tuple(row)


async def test_malformed_socket_events_change_nothing(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Every event with every junk payload answers with an ack; nothing that
    is not a valid request writes anything; the socket stays connected."""
    # Everything is delivered already, so even a well-formed `sync` in the
    # junk (a replay counts as delivery) changes nothing.
    await db.execute("update public.messages set delivered_at = now() where delivered_at is null")
    before = await fingerprint(db)
    leo = await bridge.client(LEO)
    for event in EVENTS:
        for junk in JUNK:
            ack = await leo.call(event, junk)
            assert isinstance(ack, dict), (event, junk)
            if event in ("send_message", "refresh_token"):
                assert ack["ok"] is False, (event, junk, ack)
            if not ack["ok"]:
                assert ack["error"]["code"] != "internal", (event, junk, ack)
    assert leo.sio.connected
    assert await fingerprint(db) == before
    ava = await bridge.client(AVA)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    ok = await leo.call(
        "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "still works"}
    )
    assert ok["ok"]
    await ava.wait_for("new_message")


async def test_malformed_request_bodies_change_nothing(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Every write endpoint with every junk body is a 4xx JSON error."""
    before = await fingerprint(db)
    for method, path in ENDPOINTS:
        for junk in JUNK:
            status, body = await bridge.request(method, path, LEO, json=junk)
            if path.endswith("mark-seen") and status == 200:
                continue  # a well-formed request that happened to be in the junk
            assert 400 <= status < 500, (path, junk, status, body)
            assert body["error"]["code"]
        status, body = await bridge.request(method, path, LEO, data=b"\xff\xfe{")
        assert status == 400, body
    status, body = await bridge.request("GET", "/api/conversations/x/messages?page=-1", LEO)
    assert status == 400
    status, body = await bridge.request(
        "GET", f"/api/conversations/{CAMPAIGN_CONVERSATION}/messages?limit=abc", LEO
    )
    assert status == 400 and body["error"]["field"] == "limit"
    status, body = await bridge.request(
        "POST", "/api/messages/send", LEO, data=b"{" + b"x" * 300_000 + b"}"
    )
    assert status == 413
    assert await fingerprint(db) == before
    status, _ = await bridge.request("GET", "/healthz")
    assert status == 200

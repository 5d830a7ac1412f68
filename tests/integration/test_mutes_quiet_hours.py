"""Mute and quiet hours with real clients and the FCM stand-in: events and
unread counts go on, alerting pushes do not; the chat list shows the mute."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.support.database import fingerprint
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, chat_entry
from tests.support.push import register, send
from tests.support.waits import eventually


async def jobs_for(db: asyncpg.Connection, conversation: str) -> int:
    return int(
        await db.fetchval(
            "select count(*) from bridge.push_jobs where conversation_id = $1", conversation
        )
    )


async def test_a_muted_conversation_delivers_and_counts_but_does_not_push(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """Leo mutes the campaign chat: Ava's message there still reaches his
    socket and his unread count, but no push is written or sent, while her
    message in the bid chat is pushed; the chat list says muted; after
    unmuting, the campaign chat pushes again."""
    await register(pushing, LEO, "leo-phone")
    leo = await pushing.client(LEO)
    ack = await leo.call("mute_conversation", {"conversationId": CAMPAIGN_CONVERSATION})
    assert ack["ok"] and ack["muted"] is True and ack["muted_until"] is None
    row = await chat_entry(pushing, LEO, CAMPAIGN_CONVERSATION)
    assert row["muted"] is True and row["muted_until"] is None
    unread = row["unread_count"]

    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "muted news")
    await send(pushing, AVA, BID_CONVERSATION, "loud news")
    await leo.wait_for("new_message", lambda d: d["message"]["content"] == "muted news")
    await eventually(lambda: len(fcm.messages_to("leo-phone")) == 1)
    assert fcm.messages_to("leo-phone")[0]["notification"]["body"] == "loud news"
    assert await jobs_for(db, CAMPAIGN_CONVERSATION) == 0
    assert (await chat_entry(pushing, LEO, CAMPAIGN_CONVERSATION))["unread_count"] == unread + 1
    assert (await chat_entry(pushing, AVA, CAMPAIGN_CONVERSATION))["muted"] is False  # his alone

    status, body = await pushing.request(
        "DELETE", f"/api/conversations/{CAMPAIGN_CONVERSATION}/mute", LEO
    )
    assert status == 200 and body["unmuted"] is True
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "unmuted news")
    await eventually(lambda: len(fcm.messages_to("leo-phone")) == 2)
    assert (await chat_entry(pushing, LEO, CAMPAIGN_CONVERSATION))["muted"] is False


async def test_a_mute_until_a_time(bridge: Harness) -> None:
    """A mute until an hour from now shows that time in the chat list (REST
    PUT), and a later mute replaces it."""
    until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    status, body = await bridge.request(
        "PUT",
        f"/api/conversations/{BID_CONVERSATION}/mute",
        LEO,
        json={"until": until.isoformat()},
    )
    assert status == 200, body
    row = await chat_entry(bridge, LEO, BID_CONVERSATION)
    assert row["muted"] is True
    assert datetime.fromisoformat(row["muted_until"]) == until
    status, body = await bridge.request("PUT", f"/api/conversations/{BID_CONVERSATION}/mute", LEO)
    assert status == 200 and body["muted_until"] is None


@pytest.mark.parametrize(
    ("user", "payload", "code"),
    [
        (
            LEO,
            {"conversationId": BID_CONVERSATION, "until": "2020-01-01T00:00:00Z"},
            "invalid_field",
        ),
        (LEO, {"conversationId": BID_CONVERSATION, "until": "tomorrow"}, "invalid_field"),
        (
            LEO,
            {"conversationId": BID_CONVERSATION, "until": "2099-01-01T00:00:00"},
            "invalid_field",
        ),
        (LEO, {"conversationId": "nope"}, "invalid_field"),
        (LEO, {"conversationId": str(uuid.uuid4())}, "not_found"),
        (MIA, {"conversationId": BID_CONVERSATION}, "not_found"),  # not hers
    ],
)
async def test_bad_mutes_change_nothing(
    bridge: Harness, db: asyncpg.Connection, user: str, payload: dict[str, Any], code: str
) -> None:
    """A mute in the past, without an offset, of a malformed, unknown or
    someone else's conversation gets a clear code and stores nothing."""
    client = await bridge.client(user)
    before = await fingerprint(db)
    ack = await client.call("mute_conversation", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert await db.fetchval("select count(*) from public.conversation_mutes") == 0
    assert await fingerprint(db) == before


def window_around_now(zone: str) -> tuple[str, str]:
    """Quiet hours from an hour ago to an hour ahead, in `zone`'s local time."""
    local = datetime.now(ZoneInfo(zone))
    return (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )


async def test_quiet_hours_hold_pushes_back_in_the_users_time_zone(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """Leo's quiet hours (Tokyo time) cover now: Ava's message reaches his
    socket but is not pushed; hours that do not cover now push as before;
    cleared, pushes come again."""
    await register(pushing, LEO, "leo-phone")
    leo = await pushing.client(LEO)
    start, end = window_around_now("Asia/Tokyo")
    ack = await leo.call("set_quiet_hours", {"start": start, "end": end, "timeZone": "Asia/Tokyo"})
    assert ack["ok"] and ack["quietHours"]["active_now"] is True
    status, body = await pushing.request("GET", "/api/quiet-hours", LEO)
    assert body["quiet_hours"] == {
        "start": start,
        "end": end,
        "time_zone": "Asia/Tokyo",
        "active_now": True,
    }
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "at night")
    await leo.wait_for("new_message", lambda d: d["message"]["content"] == "at night")

    # Hours six to eight hours ahead in New York do not cover now: pushed.
    local = datetime.now(ZoneInfo("America/New_York"))
    ahead = {
        "start": (local + timedelta(hours=6)).strftime("%H:%M"),
        "end": (local + timedelta(hours=8)).strftime("%H:%M"),
        "time_zone": "America/New_York",
    }
    status, body = await pushing.request("PUT", "/api/quiet-hours", LEO, json=ahead)
    assert status == 200 and body["quiet_hours"]["active_now"] is False, body
    await send(pushing, AVA, BID_CONVERSATION, "daytime")
    await eventually(lambda: len(fcm.messages_to("leo-phone")) == 1)
    assert fcm.messages_to("leo-phone")[0]["notification"]["body"] == "daytime"
    status, body = await pushing.request("DELETE", "/api/quiet-hours", LEO)
    assert status == 200 and body["quiet_hours"] is None
    pushed = len(fcm.messages_to("leo-phone"))
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "morning")
    await eventually(lambda: len(fcm.messages_to("leo-phone")) == pushed + 1)
    assert all(m["notification"]["body"] != "at night" for m in fcm.messages_to("leo-phone"))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"start": "25:00", "end": "07:00", "timeZone": "UTC"}, "invalid_field"),
        ({"start": "22:00", "end": "7am", "timeZone": "UTC"}, "invalid_field"),
        ({"start": "22:00", "end": "22:00", "timeZone": "UTC"}, "invalid_field"),
        ({"start": "22:00", "end": "07:00", "timeZone": "Mars/Olympus"}, "invalid_field"),
        ({"start": "22:00", "end": "07:00"}, "invalid_field"),
        ("22:00", "invalid_payload"),
    ],
)
async def test_bad_quiet_hours_change_nothing(
    bridge: Harness, db: asyncpg.Connection, payload: Any, code: str
) -> None:
    """Times that are not HH:MM, an empty window, an unknown time zone get a
    clear code and store nothing."""
    leo = await bridge.client(LEO)
    ack = await leo.call("set_quiet_hours", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert await db.fetchval("select count(*) from public.quiet_hours") == 0


async def test_no_push_across_a_block(bridge: Harness, db: asyncpg.Connection) -> None:
    """Once Ava blocked Leo no push about their conversations is written
    (flow steps' system messages still go in): the reason is `blocked`."""
    status, _ = await bridge.request("POST", "/api/blocks", AVA, json={"user_id": LEO})
    assert status == 201
    for user in (AVA, LEO):
        reason = await db.fetchval("select bridge.push_silenced($1, $2)", user, BID_CONVERSATION)
        assert reason == "blocked"
    # Ava's chat with Mia pushes as before.
    assert (
        await db.fetchval("select bridge.push_silenced($1, $2)", MIA, DIRECT_CONVERSATION) is None
    )

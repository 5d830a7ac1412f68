"""Real Socket.IO clients against the real daemon and Postgres: the seed's
events with the seed's payload keys reach the two participants and never the
third user."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from tests.conftest import both_grant_modes
from tests.support.demo import (
    AVA,
    BID,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    CAMPAIGN_SUMMER,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.harness import Client, Harness, about, seed_client, token
from tests.support.waits import QUIET, eventually

# Runs on projects with and without Supabase's default privileges on public.
pytestmark = both_grant_modes


def chat_events(client: Client) -> list[tuple[str, Any]]:
    """What a client received apart from its partners' presence."""
    return [(e, d) for e, d in client.events if e != "user_status_update"]


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        (None, "no access token"),
        ({"token": "not-a-jwt"}, "not a JWT"),
        ({"token": token(LEO, ttl=-60)}, "expired"),
        ({"token": token(LEO, secret="another-secret-that-is-32-characters-x")}, "signature"),
        ({"token": token(LEO), "userId": AVA}, "auth.userId"),
        ({"token": token(LEO, role="anon")}, "signed-in user"),
        ({"token": token("00000000-0000-4000-8000-000000000009")}, "no chat profile"),
    ],
    ids=[
        "missing",
        "malformed",
        "expired",
        "wrong-signature",
        "user-mismatch",
        "anon-role",
        "unknown-user",
    ],
)
async def test_bad_tokens_are_refused_with_a_reason(
    bridge: Harness, auth: dict[str, str] | None, says: str
) -> None:
    """connect_error tells the client which of the token's problems it has."""
    client = bridge.unconnected()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth=auth or {})
    assert len(client.connect_errors) == 1
    error = client.connect_errors[0]
    assert says in error["message"]
    assert error["data"]["code"]


async def test_bearer_header_is_accepted(bridge: Harness) -> None:
    """A client may send the token as an Authorization header instead of auth."""
    client = bridge.unconnected()
    await client.connect(auth={}, headers={"Authorization": f"Bearer {token(MIA)}"})
    assert client.sio.connected


async def test_message_reaches_both_participants_and_nobody_else(bridge: Harness) -> None:
    """Leo sends through the socket: Ava's chat window gets new_message, her
    list gets conversation_list_updated and unread_count_updated; Leo gets
    his own message back; Mia, who is not in the conversation, gets nothing."""
    ava, leo, mia = [await seed_client(bridge, u) for u in (AVA, LEO, MIA)]
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    await leo.call("join_conversation", {"conversationId": CAMPAIGN_CONVERSATION})

    ack = await leo.call(
        "send_message",
        {
            "conversationId": CAMPAIGN_CONVERSATION,
            "senderId": LEO,
            "receiverId": AVA,
            "message": "Draft is up!",
        },
    )
    assert ack["ok"] and ack["duplicate"] is False
    message_id = ack["message"]["id"]

    new = await ava.wait_for("new_message", about(CAMPAIGN_CONVERSATION))
    assert set(new) == {"event_id", "conversation_id", "message", "conversation_context"}
    assert new["message"]["id"] == message_id
    assert new["message"]["content"] == "Draft is up!"
    assert new["message"]["sender"]["profile_image_url"] == (
        f"http://storage.test/storage/v1/object/public/avatars/{LEO}/leo.jpg"
    )
    assert new["conversation_context"]["flow_state"] == "work_in_progress"

    listed = await ava.wait_for("conversation_list_updated", about(CAMPAIGN_CONVERSATION))
    assert {"conversation_id", "action", "message", "timestamp"} <= set(listed)
    assert listed["action"] == "new_message"
    unread = await ava.wait_for("unread_count_updated", about(CAMPAIGN_CONVERSATION))
    assert set(unread) == {"event_id", "conversation_id", "unread_count", "action", "timestamp"}
    assert unread["unread_count"] == 1

    await leo.wait_for("new_message", lambda d: d["message"]["id"] == message_id)
    await asyncio.sleep(QUIET)
    # One delivery per socket although the message goes to several of its rooms.
    assert len([d for d in ava.received("new_message") if d["message"]["id"] == message_id]) == 1
    assert chat_events(mia) == []


async def test_rest_send_is_delivered_through_the_outbox(bridge: Harness) -> None:
    """A message stored by the REST API reaches the sockets the same way."""
    mia = await seed_client(bridge, MIA)
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        AVA,
        json={"conversation_id": DIRECT_CONVERSATION, "message": "Hello Mia"},
    )
    assert status == 201, body
    got = await mia.wait_for("new_message", about(DIRECT_CONVERSATION))
    assert got["message"]["id"] == body["message"]["id"]


async def test_retry_with_client_message_id_is_one_message(bridge: Harness) -> None:
    """A resend with the same clientMessageId returns the stored message and
    is announced once."""
    ava = await seed_client(bridge, AVA)
    leo = await seed_client(bridge, LEO)
    payload = {"conversationId": BID_CONVERSATION, "message": "once", "clientMessageId": "m-1"}
    first = await leo.call("send_message", payload)
    second = await leo.call("send_message", payload)
    assert first["message"]["id"] == second["message"]["id"]
    assert second["duplicate"] is True
    await ava.wait_for("new_message", about(BID_CONVERSATION))
    await asyncio.sleep(QUIET)
    assert len(ava.received("new_message")) == 1


async def test_a_client_message_id_reused_elsewhere_is_a_conflict(bridge: Harness) -> None:
    """Leo sends with clientMessageId m-2 into the bid conversation, then
    (a client bug) with the same id into the campaign conversation: the
    second send is refused as a conflict, nothing more is stored, and Ava
    hears of the first message only."""
    ava = await seed_client(bridge, AVA)
    leo = await seed_client(bridge, LEO)
    first = await leo.call(
        "send_message",
        {"conversationId": BID_CONVERSATION, "message": "first", "clientMessageId": "m-2"},
    )
    assert first["ok"] is True and first["message"]["conversation_id"] == BID_CONVERSATION
    again = await leo.call(
        "send_message",
        {"conversationId": CAMPAIGN_CONVERSATION, "message": "again", "clientMessageId": "m-2"},
    )
    assert again["ok"] is False and again["error"]["code"] == "conflict", again
    await ava.wait_for("new_message", about(BID_CONVERSATION))
    await asyncio.sleep(QUIET)
    assert [m["message"]["content"] for m in ava.received("new_message")] == ["first"]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("join", LEO),
        ("join_global_updates", {"userId": LEO}),
        ("request_global_notifications", LEO),
        ("join_conversation", BID_CONVERSATION),
        ("join_conversation", {"conversationId": CAMPAIGN_CONVERSATION}),
        ("join_bid", {"bidId": BID}),
        ("join_campaign", {"campaignId": CAMPAIGN_SUMMER}),
        ("typing_start", {"conversationId": BID_CONVERSATION, "userId": MIA}),
        ("send_message", {"conversationId": BID_CONVERSATION, "message": "let me in"}),
        (
            "send_message",
            {"conversationId": DIRECT_CONVERSATION, "senderId": AVA, "message": "spoof"},
        ),
        ("mark_seen", {"conversationId": CAMPAIGN_CONVERSATION}),
    ],
    ids=[
        "join-other-user",
        "global-other-user",
        "notifications-other-user",
        "bid-conversation",
        "campaign-conversation",
        "bid-room",
        "campaign-room",
        "typing-elsewhere",
        "send-elsewhere",
        "send-as-other",
        "mark-elsewhere",
    ],
)
async def test_outsider_cannot_join_or_write_into_others_rooms(
    bridge: Harness, event: str, payload: Any
) -> None:
    """Mia is refused every room and write that belongs to Ava and Leo, with
    an error ack, and hears nothing afterwards."""
    ava = await seed_client(bridge, AVA)
    mia = await seed_client(bridge, MIA)
    ack = await mia.call(event, payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] in ("forbidden", "not_found")
    await ava.call("send_message", {"conversationId": BID_CONVERSATION, "message": "private"})
    await ava.wait_for("new_message", about(BID_CONVERSATION))
    await asyncio.sleep(QUIET)
    assert chat_events(mia) == []


async def test_mark_seen_tells_sender_and_readers_devices(bridge: Harness) -> None:
    """Leo reads Ava's message: Ava hears message_seen; Leo's other device
    hears message_seen_update and an unread count of zero."""
    ava = await seed_client(bridge, AVA)
    leo_phone = await seed_client(bridge, LEO)
    leo_laptop = await seed_client(bridge, LEO)
    sent = await ava.call(
        "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "read me"}
    )
    await leo_laptop.wait_for("new_message", about(CAMPAIGN_CONVERSATION))
    ack = await leo_phone.call(
        "mark_seen",
        {
            "messageId": sent["message"]["id"],
            "userId": LEO,
            "conversationId": CAMPAIGN_CONVERSATION,
        },
    )
    assert ack == {"ok": True, "conversationId": CAMPAIGN_CONVERSATION, "marked": 2}
    # marked 2: the seed's unread message is older, and reading up to a message reads it too
    seen = await ava.wait_for("messages_seen", about(CAMPAIGN_CONVERSATION))
    assert {"conversationId", "userId", "timestamp"} <= set(seen)
    assert seen["userId"] == LEO
    update = await leo_laptop.wait_for("messages_seen_update", about(CAMPAIGN_CONVERSATION))
    assert {"conversationId", "timestamp"} <= set(update)
    unread = await leo_laptop.wait_for(
        "unread_count_updated", lambda d: d["action"] == "messages_seen"
    )
    assert unread["unread_count"] == 0


async def test_single_message_seen_uses_the_single_events(bridge: Harness) -> None:
    """Reading exactly one message gives message_seen / message_seen_update
    with the seed's keys."""
    ava = await seed_client(bridge, AVA)
    mia = await seed_client(bridge, MIA)
    await mia.call("mark_seen", {"conversationId": DIRECT_CONVERSATION})  # the seed's unread one
    seen = await ava.wait_for("message_seen")
    assert set(seen) == {"event_id", "messageId", "userId", "conversationId", "timestamp"}
    update = await mia.wait_for("message_seen_update")
    assert set(update) == {"event_id", "messageId", "conversationId", "timestamp"}


async def test_typing_reaches_the_partner_only_and_expires(bridge: Harness) -> None:
    """typing_start shows in Ava's chat window (user_typing) and chat list
    (typing_status_update); without typing_stop it expires; Mia sees none."""
    ava = await seed_client(bridge, AVA)
    leo = await seed_client(bridge, LEO)
    mia = await seed_client(bridge, MIA)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    assert (
        await leo.call("typing_start", {"conversationId": CAMPAIGN_CONVERSATION, "userId": LEO})
    )["ok"]
    typing = await ava.wait_for("user_typing")
    assert typing == {"conversationId": CAMPAIGN_CONVERSATION, "userId": LEO, "isTyping": True}
    listed = await ava.wait_for("typing_status_update")
    assert set(listed) == {"conversation_id", "user_id", "is_typing", "timestamp"}
    assert listed["is_typing"] is True
    stopped = await ava.wait_for("user_typing", lambda d: d["isTyping"] is False, timeout=3)
    assert stopped["userId"] == LEO
    assert leo.received("user_typing") == []
    assert mia.received("user_typing") == mia.received("typing_status_update") == []


async def test_presence_goes_to_partners_with_a_grace_period(bridge: Harness) -> None:
    """Ava coming online is told to Leo and Mia; a quick reconnect does not
    flap; leaving for good is told after the grace period."""
    leo = await seed_client(bridge, LEO)
    mia = await seed_client(bridge, MIA)
    ava = await seed_client(bridge, AVA)
    online = await leo.wait_for("user_status_update", lambda d: d["user_id"] == AVA)
    assert set(online) == {"user_id", "status", "timestamp"} and online["status"] == "online"
    await mia.wait_for("user_status_update", lambda d: d["user_id"] == AVA)
    # Leo and Mia share no conversation: neither hears of the other.
    assert not [d for d in mia.received("user_status_update") if d["user_id"] == LEO]

    await ava.close()
    await seed_client(bridge, AVA)  # back within the grace period
    await asyncio.sleep(0.8)
    statuses = [d["status"] for d in leo.received("user_status_update") if d["user_id"] == AVA]
    assert statuses == ["online"]

    for client in [c for c in bridge.clients if c.user_id == AVA]:
        await client.close()
    offline = await leo.wait_for("user_status_update", lambda d: d["status"] == "offline")
    assert offline["user_id"] == AVA


async def test_joining_client_learns_who_is_online(bridge: Harness) -> None:
    """A client that joins its user room hears which partners are online."""
    await seed_client(bridge, LEO)
    ava = await bridge.client(AVA)
    ack = await ava.call("join", {"userId": AVA})
    assert ack["onlineUsers"] == [LEO]
    status = await ava.wait_for("user_status_update")
    assert status["user_id"] == LEO and status["status"] == "online"


async def test_flow_step_announces_state_change(bridge: Harness, db: Any) -> None:
    """A flow action (SQL function, as Ava) reaches both participants as
    conversation_state_changed with the seed's keys."""
    from bridge.db import acting_as, user_claims

    leo = await seed_client(bridge, LEO)
    async with acting_as(db, user_claims(AVA)):
        await db.execute("select public.apply_flow_action($1, 'confirm')", BID_CONVERSATION)
    changed = await leo.wait_for("conversation_state_changed")
    assert {"conversation_id", "flow_state", "awaiting_role", "chat_status"} <= set(changed)
    assert changed["flow_state"] == "work_in_progress"
    system = await leo.wait_for("new_message", about(BID_CONVERSATION))
    assert system["message"]["message_type"] == "system"


async def test_expired_token_disconnects_and_refresh_keeps_the_socket(bridge: Harness) -> None:
    """A socket whose token runs out is told and disconnected; one that
    refreshed in time stays."""
    short = bridge.unconnected()
    await short.connect(auth={"token": token(LEO, ttl=3)})
    kept = bridge.unconnected()
    # `exp` is in whole seconds: kept's token runs out no later than short's,
    # and leaves it more than a second to refresh.
    await kept.connect(auth={"token": token(LEO, ttl=2)})
    refreshed = await kept.call("refresh_token", {"token": token(LEO, ttl=3600)})
    assert refreshed["ok"]
    wrong = await kept.call("refresh_token", {"token": token(AVA)})
    assert wrong["error"]["code"] == "user_mismatch"
    await short.wait_for("token_expired", timeout=10)
    await eventually(lambda: not short.sio.connected, what="the expired socket closed")
    assert kept.sio.connected

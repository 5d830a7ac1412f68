"""The seed's client library itself: socket.io-client from npm, driven the
way the seed's React hooks drive it, against the real daemon."""

from __future__ import annotations

from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import Harness, run_seed_client, token


async def test_seed_client_code_works_unchanged_but_for_the_token(bridge: Harness) -> None:
    """useSocket joins its rooms, ChatWindow joins the conversation and sees
    the partner typing (until the message is sent) and the message; ChatList gets its updates; a bad
    token's connect_error carries the reason."""
    config = {
        "ava": AVA,
        "leo": LEO,
        "conversationId": CAMPAIGN_CONVERSATION,
        "avaToken": token(AVA),
        "leoToken": token(LEO),
        "expiredToken": token(LEO, ttl=-60),
    }
    out = await run_seed_client("seed_flow.mjs", bridge.url, config, 30)
    assert out["connectError"]["data"]["code"] == "expired_token"
    assert "expired" in out["connectError"]["message"]
    assert out["ava"]["joinAck"]["ok"] is True
    # typing_start shows; sending the message ends the typing indicator
    assert out["ava"]["typing"] == [
        {"conversationId": CAMPAIGN_CONVERSATION, "userId": LEO, "isTyping": True},
        {"conversationId": CAMPAIGN_CONVERSATION, "userId": LEO, "isTyping": False},
    ]
    new = out["ava"]["newMessage"]
    assert new["message"]["content"] == "Hello from socket.io-client"
    assert new["message"]["sender_id"] == LEO
    assert out["ava"]["listUpdated"]["conversation_id"] == CAMPAIGN_CONVERSATION
    assert out["ava"]["unread"]["unread_count"] == 1

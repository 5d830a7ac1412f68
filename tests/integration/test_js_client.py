"""The seed's client library itself: socket.io-client from npm, driven the
way the seed's React hooks drive it, against the real daemon."""

from __future__ import annotations

import base64
import os

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


async def test_seed_client_sends_an_image_through_the_attachment_api(bridge: Harness) -> None:
    """With socket.io-client and fetch, as the seed's React app: Leo's app
    asks for an upload URL, PUTs a PNG, emits send_message with
    messageType image and the path; Ava's gets new_message, asks for a read
    URL and downloads the same bytes; an HTML file is refused."""
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(1500)
    config = {
        "sender": LEO,
        "receiver": AVA,
        "conversationId": CAMPAIGN_CONVERSATION,
        "senderToken": token(LEO),
        "receiverToken": token(AVA),
        "imageBase64": base64.b64encode(image).decode(),
    }
    out = await run_seed_client("send_image.mjs", bridge.url, config, 30)
    assert out["ticket"]["ok"] and out["uploadStatus"] == 200
    assert out["received"]["media_url"] == out["ticket"]["path"]
    assert out["received"]["sender_id"] == LEO
    assert out["link"]["ok"] and out["downloadStatus"] == 200
    assert out["downloadType"] == "image/png" and out["sameBytes"] is True
    assert out["refused"]["error"]["code"] == "unsupported_type"

"""The REST API against the real daemon and Postgres: each endpoint with the
seed's shapes, bearer auth on every call, JSON errors with fitting statuses,
and a third user who can read nothing of others."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import both_grant_modes
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.harness import Harness, token

# Runs on projects with and without Supabase's default privileges on public.
pytestmark = both_grant_modes


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/conversations"),
        ("GET", f"/api/conversations/{BID_CONVERSATION}/messages"),
        ("POST", "/api/messages/send"),
        ("POST", "/api/messages/mark-seen"),
        ("POST", "/api/fcm-tokens"),
        ("DELETE", "/api/fcm-tokens/abc"),
        ("GET", "/test-socket"),
        ("POST", "/test-message"),
    ],
)
@pytest.mark.parametrize(
    ("bearer", "code"),
    [
        (None, "missing_token"),
        ("garbage", "malformed_token"),
        (token(LEO, ttl=-30), "expired_token"),
    ],
    ids=["missing", "malformed", "expired"],
)
async def test_every_call_needs_a_valid_token(
    bridge: Harness, method: str, path: str, bearer: str | None, code: str
) -> None:
    """Without a valid Supabase token every endpoint answers 401 with the reason."""
    status, body = await bridge.request(method, path, bearer=bearer)
    assert status == 401
    assert body["error"]["code"] == code


async def test_healthz_is_open_and_reports_the_database(bridge: Harness) -> None:
    """Health checks need no token and show the database and counters."""
    status, body = await bridge.request("GET", "/healthz")
    assert status == 200 and body["database"] == "ok"


async def test_conversation_list_has_what_the_chat_list_shows(bridge: Harness) -> None:
    """Leo's list: two conversations, most recent first, with other_user
    (avatar resolved or null), last_message, unread_count and flow fields."""
    status, body = await bridge.request(
        "GET", f"/api/conversations?user_id={LEO}&role=influencer", LEO
    )
    assert status == 200
    convs = body["conversations"]
    assert [c["id"] for c in convs] == [CAMPAIGN_CONVERSATION, BID_CONVERSATION]
    first = convs[0]
    assert first["other_user"] == {
        "id": AVA,
        "name": "Ava Brandt",
        "role": "brand_owner",
        "profile_image_url": None,
        "last_seen_at": None,
        "is_online": False,
    }
    assert first["last_message"]["content"] == "Perfect, thanks Leo."
    assert first["unread_count"] == 1
    assert (first["flow_state"], first["awaiting_role"], first["chat_status"]) == (
        "work_in_progress",
        "influencer",
        "active",
    )
    status, ava = await bridge.request("GET", "/api/conversations", AVA)
    by_id = {c["id"]: c for c in ava["conversations"]}
    assert by_id[BID_CONVERSATION]["other_user"]["profile_image_url"] == (
        f"http://storage.test/storage/v1/object/public/avatars/{LEO}/leo.jpg"
    )
    assert by_id[DIRECT_CONVERSATION]["other_user"]["profile_image_url"] == (
        "https://images.example.com/mia.png"
    )
    status, brand_side = await bridge.request("GET", "/api/conversations?role=brand_owner", LEO)
    assert brand_side["conversations"] == []


async def test_conversation_list_of_someone_else_is_refused(bridge: Harness) -> None:
    """user_id must be the caller."""
    status, body = await bridge.request("GET", f"/api/conversations?user_id={AVA}", MIA)
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_message_pages_by_page_and_by_cursor(bridge: Harness) -> None:
    """page/limit as the seed, oldest first within a page; the `before`
    cursor walks back without gaps or repeats."""
    path = f"/api/conversations/{CAMPAIGN_CONVERSATION}/messages"
    status, first = await bridge.request("GET", f"{path}?page=1&limit=4", LEO)
    assert status == 200
    assert len(first["messages"]) == 4 and first["has_more"] is True
    assert first["messages"][-1]["content"] == "Perfect, thanks Leo."
    status, second = await bridge.request("GET", f"{path}?page=2&limit=4", LEO)
    assert len(second["messages"]) == 2 and second["has_more"] is False
    status, cursor = await bridge.request(
        "GET", f"{path}?limit=4&before={first['next_cursor']}", LEO
    )
    assert [m["id"] for m in cursor["messages"]] == [m["id"] for m in second["messages"]]


async def test_outsider_reads_no_messages(bridge: Harness) -> None:
    """Mia asking for Ava and Leo's messages hears "not found"."""
    status, body = await bridge.request(
        "GET", f"/api/conversations/{BID_CONVERSATION}/messages", MIA
    )
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_mark_seen_one_or_all(bridge: Harness) -> None:
    """Marking one message (seed body) or a whole conversation lowers the count."""
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        AVA,
        json={"conversation_id": CAMPAIGN_CONVERSATION, "message": "two"},
    )
    status, body = await bridge.request(
        "POST",
        "/api/messages/mark-seen",
        LEO,
        json={"message_id": body["message"]["id"], "user_id": LEO},
    )
    assert status == 200 and body["marked"] == 2
    status, body = await bridge.request(
        "POST", "/api/messages/mark-seen", AVA, json={"conversation_id": BID_CONVERSATION}
    )
    assert status == 200 and body["marked"] == 1
    status, body = await bridge.request(
        "POST", "/api/messages/mark-seen", AVA, json={"conversation_id": BID_CONVERSATION}
    )
    assert body["marked"] == 0


async def test_fcm_tokens_register_idempotently_and_remove(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Registering twice is one active token; removing someone else's token
    is a 404; removing one's own works once."""
    for _ in range(2):
        status, body = await bridge.request(
            "POST", "/api/fcm-tokens", LEO, json={"token": "fcm-abc", "platform": "android"}
        )
        assert status == 200 and body["token"]["is_active"] is True
    assert await db.fetchval("select count(*) from public.fcm_tokens") == 1
    status, body = await bridge.request("DELETE", "/api/fcm-tokens/fcm-abc", MIA)
    assert status == 404
    status, body = await bridge.request("DELETE", "/api/fcm-tokens/fcm-abc", LEO)
    assert status == 200
    status, body = await bridge.request("DELETE", "/api/fcm-tokens/fcm-abc", LEO)
    assert status == 404


async def test_seed_test_endpoints(bridge: Harness) -> None:
    """/test-socket answers, /test-message sends as the token's user."""
    status, body = await bridge.request("GET", "/test-socket", MIA)
    assert status == 200 and body["user_id"] == MIA
    status, body = await bridge.request(
        "POST",
        "/test-message",
        MIA,
        json={
            "conversationId": DIRECT_CONVERSATION,
            "senderId": MIA,
            "receiverId": AVA,
            "message": "Test message",
        },
    )
    assert status == 201 and body["message"]["sender_id"] == MIA


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/api/messages/send", "not json", 400, None),
        ("/api/messages/send", [1, 2], 400, None),
        ("/api/messages/send", {"message": "hi"}, 400, "conversationId"),
        ("/api/messages/send", {"conversation_id": "nope", "message": "hi"}, 400, "conversationId"),
        (
            "/api/messages/send",
            {"conversation_id": CAMPAIGN_CONVERSATION, "message": 5},
            400,
            "message",
        ),
        (
            "/api/messages/send",
            {"conversation_id": CAMPAIGN_CONVERSATION, "message": "x" * 4001},
            400,
            "message",
        ),
        (
            "/api/messages/send",
            {"conversation_id": CAMPAIGN_CONVERSATION, "message": "  "},
            400,
            "message",
        ),
        (
            "/api/messages/send",
            {"conversation_id": CAMPAIGN_CONVERSATION, "message": "hi", "message_type": "video"},
            400,
            "messageType",
        ),
        (
            "/api/messages/send",
            {"conversation_id": CAMPAIGN_CONVERSATION, "message": "hi", "sender_id": AVA},
            400,
            "senderId",
        ),
        ("/api/messages/mark-seen", {}, 400, "messageId"),
        ("/api/messages/mark-seen", {"message_id": 7}, 400, "messageId"),
        ("/api/fcm-tokens", {"token": "t", "platform": "nokia"}, 400, "platform"),
        ("/api/fcm-tokens", {"token": ["t"], "platform": "ios"}, 400, "token"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    bridge: Harness,
    db: asyncpg.Connection,
    path: str,
    body: object,
    status: int,
    field: str | None,
) -> None:
    """Bad input is a 400 that names the field and writes nothing."""
    before = await db.fetchval("select count(*) from public.messages")
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    got, reply = await bridge.request("POST", path, LEO, **kwargs)
    assert got == status, reply
    if field is not None:
        assert reply["error"]["field"] == field
    assert await db.fetchval("select count(*) from public.messages") == before


async def test_sending_into_someone_elses_conversation_is_not_found(bridge: Harness) -> None:
    """Mia sending into Ava and Leo's conversation hears exactly what she
    hears for a conversation that does not exist: their ids leak nothing."""
    answers = []
    for conversation in (BID_CONVERSATION, "c0000000-0000-4000-8000-0000000000ff"):
        status, body = await bridge.request(
            "POST",
            "/api/messages/send",
            MIA,
            json={"conversation_id": conversation, "message": "hi"},
        )
        answers.append((status, body))
    assert answers[0] == answers[1]
    not_found = {"error": {"code": "not_found", "message": "conversation not found"}}
    assert answers[0] == (404, not_found)


async def test_unknown_routes_and_methods_are_json(bridge: Harness) -> None:
    """Even a wrong URL gets a JSON error body."""
    status, body = await bridge.request("GET", "/api/nothing", LEO)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await bridge.request("PUT", "/api/messages/send", LEO)
    assert status == 405 and body["error"]["code"] == "method_not_allowed"

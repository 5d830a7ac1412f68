"""translate(): one outbox change in, emits and push intents out. Table
tests over every topic, plus the guards that keep events inside the change's
recipients."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.translate import Change, TranslationError, preview, translate
from bridge.views import avatar_url

BASE = "https://proj.supabase.co/storage/v1/object/public/avatars"
BO, INF, OTHER = (
    "b0000000-0000-4000-8000-000000000001",
    "i0000000-0000-4000-8000-000000000002",
    ("o0000000-0000-4000-8000-000000000003"),
)
CONV = "c0000000-0000-4000-8000-0000000000aa"


def conversation(**overrides: Any) -> dict[str, Any]:
    return {
        "id": CONV,
        "conversation_type": "bid",
        "brand_owner_id": BO,
        "influencer_id": INF,
        "bid_id": "bid-1",
        "campaign_id": None,
        "flow_state": "work_review",
        "awaiting_role": "brand_owner",
        "chat_status": "active",
        "last_message_id": "m-1",
        "last_message_at": "2026-11-24T10:00:00+00:00",
        "brand_owner_unread_count": 3,
        "influencer_unread_count": 0,
        "created_at": "2026-11-20T10:00:00+00:00",
        "updated_at": "2026-11-24T10:00:00+00:00",
        **overrides,
    }


def message(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "m-1",
        "conversation_id": CONV,
        "sender_id": INF,
        "content": "Here is the draft",
        "message_type": "text",
        "media_url": None,
        "is_read": False,
        "read_at": None,
        "client_message_id": "c-1",
        "created_at": "2026-11-24T10:00:00+00:00",
        **overrides,
    }


def change(
    topic: str,
    payload: dict[str, Any],
    recipients: tuple[str, ...] = (BO, INF),
    conversation_id: str | None = CONV,
) -> Change:
    return Change(1, topic, conversation_id, recipients, payload, "2026-11-24T10:00:01+00:00")


SENDER = {"id": INF, "name": "Leo", "role": "influencer", "profile_image_url": f"{INF}/me.png"}

CASES: list[tuple[str, Change, list[tuple[str, tuple[str, ...], set[str]]], list[str]]] = [
    (
        "text message",
        change(
            "message.created",
            {"message": message(), "conversation": conversation(), "sender": SENDER},
        ),
        [
            (
                "new_message",
                (
                    f"conversation_{CONV}",
                    f"user_{INF}",
                    f"global_{INF}",
                    f"user_{BO}",
                    f"global_{BO}",
                ),
                {"conversation_id", "message", "conversation_context"},
            ),
            (
                "conversation_list_updated",
                (f"user_{INF}", f"global_{INF}"),
                {
                    "conversation_id",
                    "action",
                    "message",
                    "timestamp",
                    "last_message_at",
                    "flow_state",
                    "awaiting_role",
                    "chat_status",
                    "unread_count",
                },
            ),
            (
                "conversation_list_updated",
                (f"user_{BO}", f"global_{BO}"),
                {
                    "conversation_id",
                    "action",
                    "message",
                    "timestamp",
                    "last_message_at",
                    "flow_state",
                    "awaiting_role",
                    "chat_status",
                    "unread_count",
                },
            ),
            (
                "unread_count_updated",
                (f"user_{BO}", f"global_{BO}"),
                {"conversation_id", "unread_count", "action", "timestamp"},
            ),
            (
                "notification",
                (f"notifications_{BO}",),
                {"type", "conversation_id", "title", "body", "data", "timestamp"},
            ),
        ],
        [f"message->{BO}"],
    ),
    (
        "one message read",
        change(
            "messages.read",
            {
                "conversation": conversation(),
                "reader_id": BO,
                "sender_id": INF,
                "message_ids": ["m-1"],
                "read_at": "2026-11-24T10:01:00+00:00",
            },
        ),
        [
            (
                "message_seen",
                (f"conversation_{CONV}", f"user_{INF}", f"global_{INF}"),
                {"messageId", "userId", "conversationId", "timestamp"},
            ),
            (
                "message_seen_update",
                (f"user_{BO}", f"global_{BO}"),
                {"messageId", "conversationId", "timestamp"},
            ),
            (
                "unread_count_updated",
                (f"user_{BO}", f"global_{BO}"),
                {"conversation_id", "unread_count", "action", "timestamp"},
            ),
        ],
        [],
    ),
    (
        "many messages read",
        change(
            "messages.read",
            {
                "conversation": conversation(),
                "reader_id": BO,
                "sender_id": INF,
                "message_ids": ["m-1", "m-2"],
                "read_at": "2026-11-24T10:01:00+00:00",
            },
        ),
        [
            (
                "messages_seen",
                (f"conversation_{CONV}", f"user_{INF}", f"global_{INF}"),
                {"conversationId", "userId", "timestamp", "messageIds"},
            ),
            (
                "messages_seen_update",
                (f"user_{BO}", f"global_{BO}"),
                {"conversationId", "timestamp", "messageIds"},
            ),
            (
                "unread_count_updated",
                (f"user_{BO}", f"global_{BO}"),
                {"conversation_id", "unread_count", "action", "timestamp"},
            ),
        ],
        [],
    ),
    (
        "state change",
        change(
            "conversation.state_changed",
            {"conversation": conversation(), "previous": {"flow_state": "work_in_progress"}},
        ),
        [
            (
                "conversation_state_changed",
                (
                    f"conversation_{CONV}",
                    "bid_bid-1",
                    f"user_{BO}",
                    f"global_{BO}",
                    f"user_{INF}",
                    f"global_{INF}",
                ),
                {
                    "conversation_id",
                    "flow_state",
                    "awaiting_role",
                    "chat_status",
                    "previous",
                    "timestamp",
                },
            ),
            (
                "conversation_list_updated",
                (f"user_{BO}", f"global_{BO}", f"user_{INF}", f"global_{INF}"),
                {
                    "conversation_id",
                    "action",
                    "timestamp",
                    "flow_state",
                    "awaiting_role",
                    "chat_status",
                },
            ),
        ],
        [],
    ),
    (
        "conversation created",
        change(
            "conversation.created",
            {
                "conversation": conversation(),
                "brand_owner": {"id": BO, "name": "Ava"},
                "influencer": SENDER,
            },
        ),
        [
            (
                "conversation_list_updated",
                (f"user_{BO}", f"global_{BO}"),
                {
                    "conversation_id",
                    "action",
                    "conversation",
                    "timestamp",
                    "flow_state",
                    "awaiting_role",
                },
            ),
            (
                "conversation_list_updated",
                (f"user_{INF}", f"global_{INF}"),
                {
                    "conversation_id",
                    "action",
                    "conversation",
                    "timestamp",
                    "flow_state",
                    "awaiting_role",
                },
            ),
        ],
        [],
    ),
    (
        "profile updated",
        change("profile.updated", {"user": SENDER}, recipients=(INF, BO), conversation_id=None),
        [
            (
                "conversation_list_updated",
                (f"user_{INF}", f"global_{INF}", f"user_{BO}", f"global_{BO}"),
                {"conversation_id", "action", "user", "timestamp"},
            ),
        ],
        [],
    ),
]


@pytest.mark.parametrize(("name", "given", "emits", "pushes"), CASES, ids=[c[0] for c in CASES])
def test_translation_table(
    name: str,
    given: Change,
    emits: list[tuple[str, tuple[str, ...], set[str]]],
    pushes: list[str],
) -> None:
    """Each change becomes exactly these events, to exactly these rooms,
    with exactly the seed's payload keys (plus the change's event_id), and
    these pushes."""
    result = translate(given, BASE)
    assert [(e.event, e.rooms, set(e.payload)) for e in result.emits] == [
        (event, rooms, {*keys, "event_id"}) for event, rooms, keys in emits
    ]
    assert {e.payload["event_id"] for e in result.emits} == {given.id}
    assert [f"{p.kind}->{p.user_id}" for p in result.pushes] == pushes


def test_message_payload_details() -> None:
    """The message carries the seed's `type`, the sender with a public
    avatar URL, and each side's own unread count."""
    result = translate(
        change(
            "message.created",
            {"message": message(), "conversation": conversation(), "sender": SENDER},
        ),
        BASE,
    )
    new = result.emits[0].payload
    assert new["message"]["type"] == "text"
    assert new["message"]["sender"]["profile_image_url"] == f"{BASE}/{INF}/me.png"
    counts = {
        e.rooms[0]: e.payload["unread_count"]
        for e in result.emits
        if e.event == "conversation_list_updated"
    }
    assert counts == {f"user_{INF}": 0, f"user_{BO}": 3}
    push = result.pushes[0]
    assert (push.title, push.body) == ("Leo", "Here is the draft")
    assert all(isinstance(v, str) for v in push.data.values())


def test_system_message_is_a_flow_push() -> None:
    """A system message (flow step) is pushed as a flow notification."""
    result = translate(
        change(
            "message.created",
            {
                "message": message(
                    sender_id=BO, message_type="system", content="You have a new connection request"
                ),
                "conversation": conversation(flow_state="influencer_responding"),
                "sender": {"id": BO, "name": "Ava"},
            },
        ),
        BASE,
    )
    (push,) = result.pushes
    assert (push.kind, push.user_id, push.body) == (
        "flow",
        INF,
        "You have a new connection request",
    )
    assert push.data["flow_state"] == "influencer_responding"


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        ({"message_type": "image", "content": ""}, "📷 Image"),
        ({"message_type": "file", "content": "report"}, "📎 File"),
        ({"message_type": "text", "content": "  two\n lines "}, "two lines"),
        ({"message_type": "text", "content": "y" * 500}, "y" * 139 + "…"),
    ],
)
def test_preview_text(msg: dict[str, str], expected: str) -> None:
    """Push and list previews: media get a label, long text is cut."""
    assert preview(msg) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("https://cdn.example.com/a.png", "https://cdn.example.com/a.png"),
        ("u1/a.png", f"{BASE}/u1/a.png"),
        ("/u1/a.png", f"{BASE}/u1/a.png"),
        ("../secrets", None),
        (42, None),
    ],
)
def test_avatar_url(value: Any, expected: str | None) -> None:
    """Storage paths become public URLs; missing or odd values are null, never an error."""
    assert avatar_url(value, BASE) == expected


def test_unknown_topic_is_refused() -> None:
    """A topic the bridge does not know is an error, not a silent drop."""
    with pytest.raises(TranslationError, match="unknown topic"):
        translate(change("message.exploded", {}), BASE)


def test_malformed_payload_is_refused() -> None:
    """A payload missing its keys is a TranslationError (the relay logs and skips it)."""
    with pytest.raises(TranslationError):
        translate(change("message.created", {"message": {}}), BASE)


def test_events_never_leave_the_recipients() -> None:
    """A payload naming someone outside the recipients cannot route to them."""
    foreign = conversation(influencer_id=OTHER)
    with pytest.raises(TranslationError, match="not a recipient"):
        translate(
            change(
                "message.created",
                {"message": message(sender_id=OTHER), "conversation": foreign, "sender": SENDER},
            ),
            BASE,
        )

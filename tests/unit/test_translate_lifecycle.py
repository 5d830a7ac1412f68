"""translate() for a message's life after sending: edits, unsends (with the
push that replaces one already shown) and delivery receipts; and the
payloads of the new client events."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import payloads
from bridge.errors import PayloadError
from bridge.translate import UNSENT_TEXT, translate
from tests.unit.test_translate import BASE, BO, CONV, INF, change, conversation, message

SENDER = {"id": INF, "name": "Leo Creator", "role": "influencer", "profile_image_url": None}
M1 = "a0000000-0000-4000-8000-000000000001"
M2 = "a0000000-0000-4000-8000-000000000002"


def rooms_of(result: Any, event: str) -> list[tuple[str, ...]]:
    return [e.rooms for e in result.emits if e.event == event]


def test_an_edit_reaches_the_room_and_both_participants() -> None:
    """message_updated goes to the conversation room and both people's
    rooms with the new text and edited_at; the chat lists follow because it
    is the last message; nothing is pushed."""
    edited = message(content="Here is the final draft", edited_at="2026-11-24T10:05:00+00:00")
    result = translate(
        change("message.updated", {"message": edited, "conversation": conversation()}), BASE
    )
    [rooms] = rooms_of(result, "message_updated")
    assert set(rooms) == {
        f"conversation_{CONV}",
        f"user_{BO}",
        f"global_{BO}",
        f"user_{INF}",
        f"global_{INF}",
    }
    [updated] = [e.payload for e in result.emits if e.event == "message_updated"]
    assert updated["message"]["content"] == "Here is the final draft"
    assert updated["message"]["edited_at"] == "2026-11-24T10:05:00+00:00"
    assert updated["message_id"] == "m-1" and updated["event_id"] == 1
    lists = [e.payload for e in result.emits if e.event == "conversation_list_updated"]
    assert [p["action"] for p in lists] == ["message_updated", "message_updated"]
    assert all(p["is_last_message"] for p in lists)
    assert result.pushes == ()


def test_an_edit_of_an_older_message_leaves_the_chat_lists_alone() -> None:
    """Only the message's own event: the chat list shows another message."""
    edited = message(id="m-0", content="typo fixed")
    result = translate(
        change("message.updated", {"message": edited, "conversation": conversation()}), BASE
    )
    assert [e.event for e in result.emits] == ["message_updated"]


def test_unsending_an_unread_message_lowers_the_count_and_retracts_its_push() -> None:
    """message_deleted carries the tombstone; the receiver's unread count
    drops; the push intent replaces a shown one with the latest message
    still unread."""
    tombstone = message(content="", deleted_at="2026-11-24T10:03:00+00:00")
    latest = message(id=M1, content="The earlier one")
    payload = {
        "message": tombstone,
        "conversation": conversation(brand_owner_unread_count=2),
        "sender": SENDER,
        "was_unread": True,
        "latest_unread": latest,
    }
    result = translate(change("message.deleted", payload), BASE)
    [deleted] = [e.payload for e in result.emits if e.event == "message_deleted"]
    assert deleted["message"]["content"] == "" and deleted["message"]["deleted_at"]
    [unread] = [e for e in result.emits if e.event == "unread_count_updated"]
    assert unread.rooms == (f"user_{BO}", f"global_{BO}")
    assert unread.payload["unread_count"] == 2 and unread.payload["action"] == "message_deleted"
    [push] = result.pushes
    assert (push.user_id, push.kind, push.title, push.body) == (
        BO,
        "retract",
        "Leo Creator",
        "The earlier one",
    )
    assert push.data["message_id"] == M1 and push.data["unsent_message_id"] == "m-1"
    [mirror] = [e for e in result.emits if e.event == "notification"]
    assert mirror.rooms == (f"notifications_{BO}",)


def test_unsending_the_only_unread_message_says_it_was_unsent() -> None:
    """With nothing else unread the replacement says so, typed message_deleted."""
    payload = {
        "message": message(content="", deleted_at="2026-11-24T10:03:00+00:00"),
        "conversation": conversation(brand_owner_unread_count=0),
        "sender": SENDER,
        "was_unread": True,
        "latest_unread": None,
    }
    [push] = translate(change("message.deleted", payload), BASE).pushes
    assert push.body == UNSENT_TEXT and push.data["type"] == "message_deleted"


def test_unsending_a_read_message_pushes_nothing() -> None:
    """Read already: no count to lower, no push to replace."""
    payload = {
        "message": message(id="m-0", content="", deleted_at="2026-11-24T10:03:00+00:00"),
        "conversation": conversation(),
        "sender": SENDER,
        "was_unread": False,
    }
    result = translate(change("message.deleted", payload), BASE)
    assert [e.event for e in result.emits] == ["message_deleted"]
    assert result.pushes == ()


def test_delivery_reaches_the_sender_only() -> None:
    """message_delivered goes to the conversation room and the sender's rooms."""
    payload = {
        "conversation_id": CONV,
        "receiver_id": BO,
        "sender_id": INF,
        "message_ids": [M1, M2],
        "delivered_at": "2026-11-24T10:00:02+00:00",
    }
    [emit] = translate(change("messages.delivered", payload), BASE).emits
    assert emit.event == "message_delivered"
    assert set(emit.rooms) == {f"conversation_{CONV}", f"user_{INF}", f"global_{INF}"}
    assert emit.payload == {
        "conversationId": CONV,
        "userId": BO,
        "messageIds": [M1, M2],
        "timestamp": "2026-11-24T10:00:02+00:00",
        "event_id": 1,
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"messageIds": [M1, M2, M1]}, [M1, M2]),
        ({"messageId": M1}, [M1]),
        ({"message_ids": [M2]}, [M2]),
        (M1, [M1]),
        ([M2], [M2]),
    ],
)
def test_delivered_ids_accepts_the_usual_shapes(payload: Any, expected: list[str]) -> None:
    """A list, one id, a bare id: duplicates dropped, order kept."""
    assert payloads.delivered_ids(payload) == expected


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid_field"),
        ({}, "missing_field"),
        ({"messageIds": []}, "invalid_field"),
        ({"messageIds": [1]}, "invalid_field"),
        ({"messageIds": ["nope"]}, "invalid_field"),
        ({"messageIds": [M1] * 101}, "too_long"),
    ],
)
def test_delivered_ids_refuses_junk(payload: Any, code: str) -> None:
    """Wrong types, empty lists and too many ids are refused by name."""
    with pytest.raises(PayloadError) as refused:
        payloads.delivered_ids(payload)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"messageId": M1}, "missing_field"),
        ({"messageId": M1, "message": "   "}, "missing_field"),
        ({"messageId": M1, "message": 5}, "invalid_field"),
        ({"messageId": M1, "message": "x" * 41}, "too_long"),
        ("text", "invalid_payload"),
    ],
)
def test_edited_text_refuses_what_cannot_be_a_message(payload: Any, code: str) -> None:
    """An edit needs a non-blank string within the limit."""
    with pytest.raises(PayloadError) as refused:
        payloads.edited_text(payload, 40)
    assert refused.value.code == code

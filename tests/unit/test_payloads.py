"""Validation of client payloads: both of the seed's forms, and clear errors
naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import payloads
from bridge.errors import PayloadError

U = "22222222-2222-4222-8222-222222222222"
C = "c0000000-0000-4000-8000-000000000002"


def test_id_payload_accepts_bare_id_and_object() -> None:
    """`join_conversation` takes an id string or { conversationId }."""
    assert payloads.id_payload(C, "conversationId", field="conversationId") == C
    assert payloads.id_payload({"conversationId": C}, "conversationId", field="conversationId") == C
    assert (
        payloads.id_payload(
            {"conversation_id": C.upper()},
            "conversationId",
            "conversation_id",
            field="conversationId",
        )
        == C
    )


def test_send_message_in_the_seed_shape() -> None:
    """The seed's ChatWindow payload is a text message."""
    req = payloads.send_message(
        {"conversationId": C, "senderId": U, "receiverId": "x", "message": " hi "}, U, 4000
    )
    assert (req.conversation_id, req.content, req.message_type) == (C, " hi ", "text")


def test_media_type_is_inferred_from_the_url() -> None:
    """A mediaUrl without a type is an image or a file by its extension."""
    image = payloads.send_message({"conversationId": C, "mediaUrl": "u/a.JPG"}, U, 4000)
    file = payloads.send_message({"conversationId": C, "mediaUrl": "https://x/y.pdf"}, U, 4000)
    assert (image.message_type, file.message_type) == ("image", "file")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ("text", None, "invalid_payload"),
        ({"message": "hi"}, "conversationId", "missing_field"),
        ({"conversationId": 7, "message": "hi"}, "conversationId", "invalid_field"),
        ({"conversationId": C, "message": "x" * 11}, "message", "too_long"),
        ({"conversationId": C, "message": ""}, "message", "missing_field"),
        ({"conversationId": C, "message": "a\x00b"}, "message", "invalid_field"),
        ({"conversationId": C, "message": "hi", "senderId": C}, "senderId", "forbidden"),
        ({"conversationId": C, "messageType": "image"}, "mediaUrl", "missing_field"),
        ({"conversationId": C, "mediaUrl": "../x.png"}, "mediaUrl", "invalid_field"),
        ({"conversationId": C, "message": "a\ud800"}, "message", "invalid_field"),
        (
            {"conversationId": C, "message": "hi", "clientMessageId": "\udfff"},
            "clientMessageId",
            "invalid_field",
        ),
        ({"conversationId": C, "mediaUrl": "https://x/\ud800.png"}, "mediaUrl", "invalid_field"),
        ({"conversationId": "", "message": "hi"}, "conversationId", "missing_field"),
    ],
)
def test_send_message_errors_name_the_field(body: Any, field: str | None, code: str) -> None:
    """Each problem is reported with its code and field."""
    with pytest.raises(PayloadError) as info:
        payloads.send_message(body, U, 10)
    assert (info.value.field, info.value.code) == (field, code)


def test_empty_optional_fields_read_as_absent() -> None:
    """The seed's form sends unused inputs as '': a plain text message."""
    req = payloads.send_message(
        {
            "conversationId": C,
            "senderId": "",
            "message": "hi",
            "mediaUrl": "",
            "messageType": "",
            "clientMessageId": "",
        },
        U,
        4000,
    )
    assert (req.message_type, req.media_url, req.client_message_id) == ("text", None, None)
    assert payloads.mark_seen({"conversationId": C, "messageId": ""}, U).message_id is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0, 0), ("42", 42), ({"lastEventId": "7"}, 7), (2**63 - 1, 2**63 - 1)],
)
def test_last_event_id(raw: Any, expected: int) -> None:
    """sync's lastEventId: a number or its ASCII digits."""
    assert payloads.last_event_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["\u00b2", "\u0661", 2**63, "9" * 5000, "", -1, True, 1.0, None, "1e3", " 1"]
)
def test_last_event_id_refuses_what_is_no_event_id(raw: Any) -> None:
    """Superscripts, other scripts' digits, past bigint, 5,000 digits: invalid_field."""
    with pytest.raises(PayloadError) as info:
        payloads.last_event_id(raw)
    assert (info.value.code, info.value.field) == ("invalid_field", "lastEventId")


def test_mark_seen_needs_a_target_and_the_own_user() -> None:
    """mark_seen takes a message or a conversation, never someone else's userId."""
    assert payloads.mark_seen({"messageId": C, "userId": U}, U).message_id == C
    with pytest.raises(PayloadError, match="required"):
        payloads.mark_seen({"userId": U}, U)
    with pytest.raises(PayloadError, match="signed-in user"):
        payloads.mark_seen({"conversationId": C, "userId": C}, U)


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (1, 50)), ({"page": "3", "limit": "20"}, (3, 20))],
)
def test_page_params(query: dict[str, str], expected: tuple[int, int]) -> None:
    """The seed's page/limit with defaults."""
    assert payloads.page_params(query) == expected


@pytest.mark.parametrize("query", [{"page": "0"}, {"limit": "1000"}, {"page": "x"}])
def test_page_params_out_of_range(query: dict[str, str]) -> None:
    """Out-of-range or non-numeric paging is a named error."""
    with pytest.raises(PayloadError):
        payloads.page_params(query)

"""Push texts and payload limits, without I/O."""

from __future__ import annotations

import json
import re

from firebase_admin import exceptions, messaging

from bridge.push.fcm import Device, build, classify, collapse_id
from bridge.push.message import PAYLOAD_BUDGET, PushMessage, fit, merged_body, string_data


def size(title: str, body: str, data: dict[str, str]) -> int:
    return len(
        json.dumps({"title": title, "body": body, "data": data}, ensure_ascii=False).encode()
    )


def test_short_texts_pass_untouched() -> None:
    """Ordinary pushes are not cut."""
    assert fit("Ava", "hello", {"id": "1"}) == ("Ava", "hello")


def test_long_multibyte_body_is_cut_on_a_character_within_the_budget() -> None:
    """A body of emoji far over 4 KB is cut (with an ellipsis) to fit, never
    splitting a character; the data with the ids is kept whole."""
    data = {"conversation_id": "c" * 36, "message_id": "m" * 36}
    title, body = fit("Ava", "😀" * 3000, data)
    assert body.endswith("…") and set(body[:-1]) == {"😀"}
    assert PAYLOAD_BUDGET - 8 < size(title, body, data) <= PAYLOAD_BUDGET
    assert title == "Ava"


def test_title_is_cut_when_the_body_alone_is_not_enough() -> None:
    """With a huge title, the body shrinks to an ellipsis and the title is cut."""
    title, body = fit("T" * 5000, "body", {})
    assert body == "…" and title.endswith("…")
    assert size(title, body, {}) <= PAYLOAD_BUDGET


def test_burst_text_and_string_data() -> None:
    """A merged burst says how many; data values become strings."""
    assert merged_body("latest", 1) == "latest"
    assert merged_body("latest", 4) == "4 new messages · latest"
    assert string_data({"a": 1, "b": None, "c": "x"}) == {"a": "1", "b": "", "c": "x"}


def test_message_is_grouped_per_conversation() -> None:
    """Android tag, APNs thread-id and web tag are the conversation; badge set."""
    msg = build(PushMessage("message", "conv-1", "Ava", "hi", {"k": "v"}, 3), Device("1", "tok"))
    encoded = messaging._MessagingService.encode_message(msg)
    assert encoded["android"]["notification"]["tag"] == "conv-1"
    assert encoded["apns"]["payload"]["aps"] == {
        "badge": 3,
        "thread-id": "conv-1",
        "sound": "default",
    }
    assert encoded["webpush"]["notification"]["tag"] == "conv-1"
    assert encoded["token"] == "tok"


def test_collapse_id_fits_apns_and_web_push_topic() -> None:
    """One short id per conversation, the same every time: 22 URL-safe base64
    characters (web push Topic takes 32, apns-collapse-id 64 bytes); other
    conversations, and ids that are not uuids, get their own."""
    conversation = "c0000000-0000-4000-8000-000000000002"
    key = collapse_id(conversation)
    assert key == collapse_id(conversation) == collapse_id(conversation.upper())
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", key)
    assert collapse_id("c0000000-0000-4000-8000-000000000001") != key
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", collapse_id("conv-1"))
    msg = build(PushMessage("message", conversation, "Ava", "hi", {}, 1), Device("1", "tok"))
    encoded = messaging._MessagingService.encode_message(msg)
    assert encoded["apns"]["headers"] == {"apns-collapse-id": key}
    assert encoded["webpush"]["headers"] == {"Topic": key}


def test_device_repr_hides_the_token() -> None:
    """A device printed in a log shows its id, never its token."""
    assert "secret" not in repr(Device("7", "secret-token", "ios"))


def test_error_classes() -> None:
    """FCM answers sort into sent / dead / transient / failed."""
    d = Device("1", "t")
    cases = [
        (None, "sent"),
        (messaging.UnregisteredError("gone"), "dead"),
        (messaging.SenderIdMismatchError("other sender"), "dead"),
        (exceptions.InvalidArgumentError("The registration token is not valid"), "dead"),
        (exceptions.InvalidArgumentError("Message is too big"), "failed"),
        (messaging.QuotaExceededError("slow down"), "transient"),
        (exceptions.UnavailableError("down"), "transient"),
        (exceptions.InternalError("oops"), "transient"),
        (exceptions.UnknownError("network"), "transient"),
        (messaging.ThirdPartyAuthError("apns"), "failed"),
    ]
    assert [classify(d, e).status for e, _ in cases] == [s for _, s in cases]

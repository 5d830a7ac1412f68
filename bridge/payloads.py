"""Validation of what clients send, for Socket.IO events and REST bodies
alike. Pure: a payload in, a typed request out, or a PayloadError naming the
field. Accepts both forms the seed's clients use (a bare id string, or an
object with camelCase or snake_case keys)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from bridge.errors import PayloadError

MESSAGE_TYPES = ("text", "image", "file")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic")
MAX_MEDIA_URL = 2048
MAX_CLIENT_MESSAGE_ID = 100


def _get(payload: dict[str, Any], *names: str) -> Any:
    """The first of `names` present; an empty string reads as absent, as the
    seed's client sends its unused inputs (`mediaUrl: ''`)."""
    for name in names:
        if name in payload:
            value = payload[name]
            return None if value == "" else value
    return None


# A UUID already in its canonical form (what clients send back): kept as it is.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def as_uuid(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise PayloadError("invalid_field", f"{field} must be a UUID string", field)
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PayloadError("invalid_field", f"{field} is not a valid UUID", field) from None


def id_payload(payload: Any, *keys: str, field: str, required: bool = True) -> str | None:
    """A bare id string, or an object carrying it under one of `keys`."""
    if isinstance(payload, str):
        return as_uuid(payload, field)
    if isinstance(payload, dict):
        value = _get(payload, *keys)
        if value is None and not required:
            return None
        if value is None:
            raise PayloadError("missing_field", f"{field} is required", field)
        return as_uuid(value, field)
    if payload is None and not required:
        return None
    raise PayloadError("invalid_payload", f"expected an id string or an object with {field}")


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "expected a JSON object")
    return payload


def text(value: Any, field: str, limit: int) -> str:
    """A string within `limit` characters that Postgres can store (no NUL)."""
    if not isinstance(value, str):
        raise PayloadError("invalid_field", f"{field} must be a string", field)
    if len(value) > limit:
        raise PayloadError("too_long", f"{field} is longer than {limit} characters", field)
    if "\x00" in value:
        raise PayloadError("invalid_field", f"{field} must not contain NUL characters", field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
            raise PayloadError(
                "invalid_field", f"{field} is not valid Unicode text", field
            ) from None
    return value


def _optional_str(payload: dict[str, Any], field: str, *keys: str, limit: int) -> str | None:
    value = _get(payload, *keys)
    return None if value is None else text(value, field, limit)


def same_user(payload: Any, user_id: str, *keys: str, field: str) -> None:
    """A user id a client repeats in its payload must be its own."""
    if isinstance(payload, dict):
        value = _get(payload, *keys)
        if value is not None and as_uuid(value, field) != user_id:
            raise PayloadError("forbidden", f"{field} is not the signed-in user", field)


@dataclass(frozen=True)
class SendMessage:
    conversation_id: str
    content: str
    message_type: str
    media_url: str | None
    client_message_id: str | None


def send_message(payload: Any, user_id: str, max_chars: int) -> SendMessage:
    body = _object(payload)
    conversation_id = id_payload(body, "conversationId", "conversation_id", field="conversationId")
    assert conversation_id is not None
    same_user(body, user_id, "senderId", "sender_id", field="senderId")
    content = _get(body, "message", "content")
    content = "" if content is None else text(content, "message", max_chars)
    media_url = _optional_str(body, "mediaUrl", "mediaUrl", "media_url", limit=MAX_MEDIA_URL)
    is_url = media_url is not None and media_url.startswith(("https://", "http://"))
    if (
        media_url is not None
        and not is_url
        and ("/" not in media_url or media_url.startswith("/") or ".." in media_url)
    ):
        raise PayloadError("invalid_field", "mediaUrl must be a URL or storage path", "mediaUrl")
    kind = _get(body, "messageType", "message_type", "type")
    if kind is None:
        if media_url is None:
            kind = "text"
        else:
            kind = "image" if media_url.lower().endswith(IMAGE_SUFFIXES) else "file"
    if kind not in MESSAGE_TYPES:
        raise PayloadError(
            "invalid_field", f"messageType must be one of {', '.join(MESSAGE_TYPES)}", "messageType"
        )
    if kind == "text" and not content.strip():
        raise PayloadError("missing_field", "message must not be empty", "message")
    if kind != "text" and media_url is None:
        raise PayloadError("missing_field", f"a {kind} message needs mediaUrl", "mediaUrl")
    client_id = _optional_str(
        body,
        "clientMessageId",
        "clientMessageId",
        "client_message_id",
        limit=MAX_CLIENT_MESSAGE_ID,
    )
    return SendMessage(conversation_id, content, str(kind), media_url, client_id)


@dataclass(frozen=True)
class MarkSeen:
    conversation_id: str | None
    message_id: str | None


def mark_seen(payload: Any, user_id: str) -> MarkSeen:
    """One message (`messageId`), or all of a conversation (`conversationId` alone)."""
    body = _object(payload)
    same_user(body, user_id, "userId", "user_id", field="userId")
    message_id = id_payload(body, "messageId", "message_id", field="messageId", required=False)
    conversation_id = id_payload(
        body, "conversationId", "conversation_id", field="conversationId", required=False
    )
    if message_id is None and conversation_id is None:
        raise PayloadError("missing_field", "messageId or conversationId is required", "messageId")
    return MarkSeen(conversation_id, message_id)


@dataclass(frozen=True)
class MessageRef:
    """A message of the user's own (edit, unsend); `conversation_id` if the
    client named it (then it must match)."""

    message_id: str
    conversation_id: str | None


def message_ref(payload: Any, message_id: str | None = None) -> MessageRef:
    """A bare message id, or `{ messageId, conversationId? }`; REST passes
    the id from its path."""
    if message_id is None:
        message_id = id_payload(payload, "messageId", "message_id", field="messageId")
        assert message_id is not None
    conversation_id = None
    if isinstance(payload, dict):
        conversation_id = id_payload(
            payload, "conversationId", "conversation_id", field="conversationId", required=False
        )
    return MessageRef(message_id, conversation_id)


def edited_text(payload: Any, max_chars: int) -> str:
    """The new text of an edit: `message` (or `content`), not blank."""
    body = _object(payload)
    content = _get(body, "message", "content")
    if content is None:
        raise PayloadError("missing_field", "message is required", "message")
    content = text(content, "message", max_chars)
    if not content.strip():
        raise PayloadError(
            "missing_field", "message must not be empty (unsend the message instead)", "message"
        )
    return content


MAX_DELIVERED_IDS = 100


def delivered_ids(payload: Any) -> list[str]:
    """`message_delivered`: `{ messageIds: [...] }`, `{ messageId }`, a bare
    id or a list of ids; at most MAX_DELIVERED_IDS, duplicates dropped."""
    raw: Any = payload
    if isinstance(payload, dict):
        raw = _get(payload, "messageIds", "message_ids")
        if raw is None:
            single = id_payload(payload, "messageId", "message_id", field="messageIds")
            return [single] if single is not None else []
    if isinstance(raw, str):
        return [as_uuid(raw, "messageIds")]
    if not isinstance(raw, list) or not raw:
        raise PayloadError(
            "invalid_field", "messageIds must be a list of message ids", "messageIds"
        )
    if len(raw) > MAX_DELIVERED_IDS:
        raise PayloadError(
            "too_long", f"messageIds holds at most {MAX_DELIVERED_IDS} ids", "messageIds"
        )
    return list(dict.fromkeys(as_uuid(value, "messageIds") for value in raw))


@dataclass(frozen=True)
class Typing:
    conversation_id: str


def typing(payload: Any, user_id: str) -> Typing:
    if isinstance(payload, dict):
        same_user(payload, user_id, "userId", "user_id", field="userId")
    conversation_id = id_payload(
        payload, "conversationId", "conversation_id", field="conversationId"
    )
    assert conversation_id is not None
    return Typing(conversation_id)


STATUSES = ("online", "away", "offline")


def user_status(payload: Any, user_id: str) -> str:
    body = _object(payload)
    same_user(body, user_id, "userId", "user_id", field="userId")
    status = body.get("status")
    if status not in STATUSES:
        raise PayloadError(
            "invalid_field", f"status must be one of {', '.join(STATUSES)}", "status"
        )
    return str(status)


MAX_EVENT_ID = 2**63 - 1  # bridge.outbox.id is a bigint


def last_event_id(payload: Any) -> int:
    """`sync`'s `lastEventId`: a whole number (or its decimal digits) that
    fits the outbox's bigint ids."""
    raw = payload.get("lastEventId") if isinstance(payload, dict) else payload
    if isinstance(raw, str) and 0 < len(raw) <= 19 and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_EVENT_ID:
        raise PayloadError(
            "invalid_field", "lastEventId must be a whole number of an event", "lastEventId"
        )
    return raw


def page_params(query: dict[str, str], max_limit: int = 100) -> tuple[int, int]:
    def number(name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise PayloadError("invalid_field", f"{name} must be a whole number", name) from None
        if not low <= value <= high:
            raise PayloadError("invalid_field", f"{name} must be between {low} and {high}", name)
        return value

    return number("page", 1, 1, 1_000_000), number("limit", 50, 1, max_limit)

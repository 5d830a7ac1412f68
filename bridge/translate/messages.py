"""message.created: the new message to the conversation and both
participants, their chat lists, the receiver's unread count and push; the
push preview of a message."""

from __future__ import annotations

from typing import Any

from bridge.translate.model import Change, Emit, PushIntent, Translation
from bridge.views import (
    Json,
    conversation_context,
    conversation_room,
    other_participant,
    public_message,
    public_user,
    unread_count_for,
    user_rooms,
)

MEDIA_PREVIEW = {"image": "📷 Image", "file": "📎 File"}
PREVIEW_CHARS = 140


def preview(message: Json) -> str:
    kind = message.get("message_type", "text")
    if kind in MEDIA_PREVIEW:
        return MEDIA_PREVIEW[kind]
    text = " ".join(str(message.get("content", "")).split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def unread_count_update(conversation: Json, user: str, action: str, ts: Any) -> Emit:
    """`unread_count_updated`: the user's unread count of the conversation
    now, and which change moved it."""
    return Emit(
        "unread_count_updated",
        user_rooms(user),
        {
            "conversation_id": str(conversation["id"]),
            "unread_count": unread_count_for(conversation, user),
            "action": action,
            "timestamp": ts,
        },
    )


def message_created(change: Change, base: str) -> Translation:
    p = change.payload
    message, conversation = p["message"], p["conversation"]
    cid = str(conversation["id"])
    sender_id = str(message["sender_id"])
    receiver_id = other_participant(conversation, sender_id)
    sender = public_user(p.get("sender"), base)
    msg = public_message(message, sender)
    context = conversation_context(conversation)
    ts = message.get("created_at") or change.created_at
    emits = [
        Emit(
            "new_message",
            (conversation_room(cid), *user_rooms(sender_id), *user_rooms(receiver_id)),
            {"conversation_id": cid, "message": msg, "conversation_context": context},
        )
    ]
    for user in (sender_id, receiver_id):
        emits.append(
            Emit(
                "conversation_list_updated",
                user_rooms(user),
                {
                    "conversation_id": cid,
                    "action": "new_message",
                    "message": msg,
                    "timestamp": ts,
                    "last_message_at": conversation.get("last_message_at"),
                    "flow_state": conversation.get("flow_state"),
                    "awaiting_role": conversation.get("awaiting_role"),
                    "chat_status": conversation.get("chat_status"),
                    "unread_count": unread_count_for(conversation, user),
                },
            )
        )
    emits.append(unread_count_update(conversation, receiver_id, "new_message", ts))
    is_flow = message.get("message_type") == "system"
    sender_name = (sender or {}).get("name") or "New message"
    push = PushIntent(
        user_id=receiver_id,
        kind="flow" if is_flow else "message",
        conversation_id=cid,
        title="Conversation update" if is_flow else sender_name,
        body=preview(message),
        data={
            "type": "flow_state" if is_flow else "new_message",
            "conversation_id": cid,
            "message_id": str(message["id"]),
            "sender_id": sender_id,
            "flow_state": str(conversation.get("flow_state") or ""),
        },
    )
    return Translation(tuple(emits), (push,))

"""messages.read and messages.delivered: the sender's ticks, the reader's
other devices and unread count."""

from __future__ import annotations

from bridge.translate.messages import unread_count_update
from bridge.translate.model import Change, Emit, Translation
from bridge.views import conversation_room, user_rooms


def messages_read(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    reader, sender = str(p["reader_id"]), str(p["sender_id"])
    ids = [str(i) for i in p.get("message_ids") or []]
    ts = p.get("read_at") or change.created_at
    to_sender = (conversation_room(cid), *user_rooms(sender))
    emits: list[Emit] = []
    if len(ids) == 1:
        emits.append(
            Emit(
                "message_seen",
                to_sender,
                {"messageId": ids[0], "userId": reader, "conversationId": cid, "timestamp": ts},
            )
        )
        emits.append(
            Emit(
                "message_seen_update",
                user_rooms(reader),
                {"messageId": ids[0], "conversationId": cid, "timestamp": ts},
            )
        )
    else:
        emits.append(
            Emit(
                "messages_seen",
                to_sender,
                {"conversationId": cid, "userId": reader, "timestamp": ts, "messageIds": ids},
            )
        )
        emits.append(
            Emit(
                "messages_seen_update",
                user_rooms(reader),
                {"conversationId": cid, "timestamp": ts, "messageIds": ids},
            )
        )
    emits.append(unread_count_update(conversation, reader, "messages_seen", ts))
    return Translation(tuple(emits))


def messages_delivered(change: Change, base: str) -> Translation:
    """The receiver's device has these messages: the sender's ticks."""
    p = change.payload
    cid = str(p["conversation_id"])
    sender = str(p["sender_id"])
    return Translation(
        (
            Emit(
                "message_delivered",
                (conversation_room(cid), *user_rooms(sender)),
                {
                    "conversationId": cid,
                    "userId": str(p["receiver_id"]),
                    "messageIds": [str(i) for i in p.get("message_ids") or []],
                    "timestamp": p.get("delivered_at") or change.created_at,
                },
            ),
        )
    )

"""message.updated and message.deleted: an edit or an unsend after the
message was sent."""

from __future__ import annotations

from bridge.translate.messages import preview, unread_count_update
from bridge.translate.model import Change, Emit, PushIntent, Translation
from bridge.views import (
    conversation_room,
    other_participant,
    public_message,
    public_user,
    unread_count_for,
    user_rooms,
)

UNSENT_TEXT = "This message was unsent"


def message_changed(change: Change, base: str) -> Translation:
    """message.updated / message.deleted: the message as it is now (a
    tombstone once unsent) to the conversation room and both participants'
    devices; their chat lists when it is the conversation's last message or
    an unread one was unsent; then the receiver's lower unread count, and
    the replacement of a push that showed the unsent message."""
    p = change.payload
    message, conversation = p["message"], p["conversation"]
    cid, mid = str(conversation["id"]), str(message["id"])
    sender_id = str(message["sender_id"])
    receiver_id = other_participant(conversation, sender_id)
    deleted = change.topic == "message.deleted"
    event = "message_deleted" if deleted else "message_updated"
    msg = public_message(message)
    ts = message.get("deleted_at" if deleted else "edited_at") or change.created_at
    everyone = (conversation_room(cid), *user_rooms(sender_id), *user_rooms(receiver_id))
    emits = [Emit(event, everyone, {"conversation_id": cid, "message_id": mid, "message": msg})]
    was_unread = bool(p.get("was_unread"))
    is_last = str(conversation.get("last_message_id")) == mid
    if is_last or was_unread:
        for user in (sender_id, receiver_id):
            emits.append(
                Emit(
                    "conversation_list_updated",
                    user_rooms(user),
                    {
                        "conversation_id": cid,
                        "action": event,
                        "message": msg,
                        "is_last_message": is_last,
                        "timestamp": ts,
                        "last_message_at": conversation.get("last_message_at"),
                        "unread_count": unread_count_for(conversation, user),
                    },
                )
            )
    if not was_unread:
        return Translation(tuple(emits))
    emits.append(unread_count_update(conversation, receiver_id, "message_deleted", ts))
    # A push that showed it is replaced (same tag / collapse id) by the
    # latest message still unread, or by a note that it was unsent; the
    # badge is recounted when it is sent (bridge/push/queue.py: retract).
    latest = p.get("latest_unread")
    sender = public_user(p.get("sender"), base)
    push = PushIntent(
        user_id=receiver_id,
        kind="retract",
        conversation_id=cid,
        title=(sender or {}).get("name") or "New message",
        body=preview(latest) if latest else UNSENT_TEXT,
        data={
            "type": "new_message" if latest else "message_deleted",
            "conversation_id": cid,
            "message_id": str(latest["id"]) if latest else mid,
            "sender_id": sender_id,
            "flow_state": str(conversation.get("flow_state") or ""),
            "unsent_message_id": mid,
        },
    )
    return Translation(tuple(emits), (push,))

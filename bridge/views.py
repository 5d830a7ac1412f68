"""Every shape a client receives, in one place: room names, a message, a
user, a conversation's context and a chat-list entry. translate (live
events), replay (`sync`), the socket acks and REST all build their payloads
from these, so changing a payload key is one edit here. Pure: no I/O.

Keys follow the seed document's event table and DESIGN.md exactly.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def user_room(user_id: str) -> str:
    """The room a user's devices join on connect and with `join`."""
    return f"user_{user_id}"


def global_room(user_id: str) -> str:
    """The room of `join_global_chat` (the seed's chat-list screen)."""
    return f"global_{user_id}"


def user_rooms(user_id: str) -> tuple[str, str]:
    """The rooms a user's own devices listen on for chat-list updates."""
    return (user_room(user_id), global_room(user_id))


def conversation_room(conversation_id: object) -> str:
    """The room of an open conversation (`join_conversation`)."""
    return f"conversation_{conversation_id}"


def bid_room(bid_id: object) -> str:
    return f"bid_{bid_id}"


def campaign_room(campaign_id: object) -> str:
    return f"campaign_{campaign_id}"


def avatar_url(value: str | None, storage_public_base: str) -> str | None:
    """A profile_image_url as clients use it: full URLs pass, storage paths
    become public URLs of the avatars bucket, anything else is None."""
    if not value or not isinstance(value, str):
        return None
    if value.startswith(("http://", "https://")):
        return value
    path = value.lstrip("/")
    if not path or ".." in path.split("/"):
        return None
    return f"{storage_public_base.rstrip('/')}/{path}"


def public_user(user: Json | None, storage_public_base: str) -> Json | None:
    if not user:
        return None
    return {
        "id": user.get("id"),
        "name": user.get("name"),
        "role": user.get("role"),
        "profile_image_url": avatar_url(user.get("profile_image_url"), storage_public_base),
    }


def public_message(message: Json, sender: Json | None = None) -> Json:
    """A message as clients receive it (the seed's ChatItem reads `type`)."""
    out = {
        "id": message["id"],
        "conversation_id": message["conversation_id"],
        "sender_id": message["sender_id"],
        "content": message.get("content", ""),
        "message_type": message.get("message_type", "text"),
        "type": message.get("message_type", "text"),
        "media_url": message.get("media_url"),
        "is_read": bool(message.get("is_read", False)),
        "client_message_id": message.get("client_message_id"),
        "created_at": message.get("created_at"),
        # The message's place in its conversation: the one order of live
        # events, history and the chat list.
        "seq": message.get("seq"),
        # Its life after sending: the sender changed the text, unsent it (a
        # tombstone: no content, no media), the receiver's device had it, saw it.
        "edited_at": message.get("edited_at"),
        "deleted_at": message.get("deleted_at"),
        "delivered_at": message.get("delivered_at"),
        "read_at": message.get("read_at"),
    }
    if sender is not None:
        out["sender"] = sender
    return out


def conversation_context(conversation: Json) -> Json:
    return {
        "conversation_type": conversation.get("conversation_type"),
        "flow_state": conversation.get("flow_state"),
        "awaiting_role": conversation.get("awaiting_role"),
        "chat_status": conversation.get("chat_status"),
        "bid_id": conversation.get("bid_id"),
        "campaign_id": conversation.get("campaign_id"),
        "brand_owner_id": conversation.get("brand_owner_id"),
        "influencer_id": conversation.get("influencer_id"),
    }


def unread_count_for(conversation: Json, user_id: str) -> int:
    if conversation.get("brand_owner_id") == user_id:
        return int(conversation.get("brand_owner_unread_count") or 0)
    return int(conversation.get("influencer_unread_count") or 0)


def other_participant(conversation: Json, user_id: str) -> str:
    if conversation.get("brand_owner_id") == user_id:
        return str(conversation["influencer_id"])
    return str(conversation["brand_owner_id"])


def chat_list_entry(row: Json, is_online: bool, storage_public_base: str) -> Json:
    """A row of public.get_conversations() as REST returns it: the avatar as
    a public URL, presence (which only the bridge knows) and the last message
    in its wire shape."""
    other = row.get("other_user")
    if other is not None:
        other["profile_image_url"] = avatar_url(other.get("profile_image_url"), storage_public_base)
        other["is_online"] = is_online
    row["is_online"] = bool(other and is_online)
    if row.get("last_message") is not None:
        row["last_message"] = public_message(row["last_message"])
    return row

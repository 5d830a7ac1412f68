"""Pure translation: one outbox change in, the Socket.IO emits (event, rooms,
payload) and push intents out. No I/O; table-tested in tests/unit.

Payload keys follow the seed document's event table exactly. Rooms only ever
name the change's own recipients (users of the conversation), so nobody else
can receive it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.errors import BridgeError

Json = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One outbox row."""

    id: int
    topic: str
    conversation_id: str | None
    recipients: tuple[str, ...]
    payload: Json
    created_at: str


@dataclass(frozen=True)
class Emit:
    event: str
    rooms: tuple[str, ...]
    payload: Json


@dataclass(frozen=True)
class PushIntent:
    """A push notification due to one user because of one change."""

    user_id: str
    kind: str  # "message" | "flow"
    conversation_id: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Translation:
    emits: tuple[Emit, ...] = ()
    pushes: tuple[PushIntent, ...] = ()


class TranslationError(BridgeError, ValueError):
    """The change cannot be translated (unknown topic, missing keys)."""

    code = "untranslatable"


def user_rooms(user_id: str) -> tuple[str, str]:
    """The rooms a user's own devices listen on for chat-list updates."""
    return (f"user_{user_id}", f"global_{user_id}")


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


def _subject_rooms(conversation: Json) -> tuple[str, ...]:
    rooms = [f"conversation_{conversation['id']}"]
    if conversation.get("bid_id"):
        rooms.append(f"bid_{conversation['bid_id']}")
    if conversation.get("campaign_id"):
        rooms.append(f"campaign_{conversation['campaign_id']}")
    return tuple(rooms)


MEDIA_PREVIEW = {"image": "📷 Image", "file": "📎 File"}
PREVIEW_CHARS = 140


def preview(message: Json) -> str:
    kind = message.get("message_type", "text")
    if kind in MEDIA_PREVIEW:
        return MEDIA_PREVIEW[kind]
    text = " ".join(str(message.get("content", "")).split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _message_created(change: Change, base: str) -> Translation:
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
            (f"conversation_{cid}", *user_rooms(sender_id), *user_rooms(receiver_id)),
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
    emits.append(
        Emit(
            "unread_count_updated",
            user_rooms(receiver_id),
            {
                "conversation_id": cid,
                "unread_count": unread_count_for(conversation, receiver_id),
                "action": "new_message",
                "timestamp": ts,
            },
        )
    )
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


def _messages_read(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    reader, sender = str(p["reader_id"]), str(p["sender_id"])
    ids = [str(i) for i in p.get("message_ids") or []]
    ts = p.get("read_at") or change.created_at
    to_sender = (f"conversation_{cid}", *user_rooms(sender))
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
    emits.append(
        Emit(
            "unread_count_updated",
            user_rooms(reader),
            {
                "conversation_id": cid,
                "unread_count": unread_count_for(conversation, reader),
                "action": "messages_seen",
                "timestamp": ts,
            },
        )
    )
    return Translation(tuple(emits))


def _conversation_created(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    people = {
        str(conversation["brand_owner_id"]): public_user(p.get("brand_owner"), base),
        str(conversation["influencer_id"]): public_user(p.get("influencer"), base),
    }
    emits = []
    for user in people:
        other = other_participant(conversation, user)
        emits.append(
            Emit(
                "conversation_list_updated",
                user_rooms(user),
                {
                    "conversation_id": cid,
                    "action": "conversation_created",
                    "conversation": {
                        "id": cid,
                        **conversation_context(conversation),
                        "other_user": people[other],
                        "last_message": None,
                        "unread_count": unread_count_for(conversation, user),
                        "created_at": conversation.get("created_at"),
                        "updated_at": conversation.get("updated_at"),
                    },
                    "timestamp": conversation.get("created_at") or change.created_at,
                    "flow_state": conversation.get("flow_state"),
                    "awaiting_role": conversation.get("awaiting_role"),
                },
            )
        )
    return Translation(tuple(emits))


def _state_changed(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    bo, inf = str(conversation["brand_owner_id"]), str(conversation["influencer_id"])
    ts = conversation.get("updated_at") or change.created_at
    state = {
        "flow_state": conversation.get("flow_state"),
        "awaiting_role": conversation.get("awaiting_role"),
        "chat_status": conversation.get("chat_status"),
    }
    return Translation(
        (
            Emit(
                "conversation_state_changed",
                (*_subject_rooms(conversation), *user_rooms(bo), *user_rooms(inf)),
                {
                    "conversation_id": cid,
                    **state,
                    "previous": p.get("previous"),
                    "timestamp": ts,
                },
            ),
            Emit(
                "conversation_list_updated",
                (*user_rooms(bo), *user_rooms(inf)),
                {"conversation_id": cid, "action": "state_changed", "timestamp": ts, **state},
            ),
        )
    )


def _profile_updated(change: Change, base: str) -> Translation:
    user = public_user(change.payload.get("user"), base)
    rooms = tuple(room for r in change.recipients for room in user_rooms(r))
    return Translation(
        (
            Emit(
                "conversation_list_updated",
                rooms,
                {
                    "conversation_id": None,
                    "action": "profile_updated",
                    "user": user,
                    "timestamp": change.created_at,
                },
            ),
        )
    )


_HANDLERS = {
    "message.created": _message_created,
    "messages.read": _messages_read,
    "conversation.created": _conversation_created,
    "conversation.state_changed": _state_changed,
    "profile.updated": _profile_updated,
}


def notification_mirror(push: PushIntent, timestamp: str) -> Emit:
    """Every push is mirrored in-app to the person's notifications room."""
    return Emit(
        "notification",
        (f"notifications_{push.user_id}",),
        {
            "type": push.kind,
            "conversation_id": push.conversation_id,
            "title": push.title,
            "body": push.body,
            "data": push.data,
            "timestamp": timestamp,
        },
    )


def translate(change: Change, storage_public_base: str) -> Translation:
    """The emits and pushes of one change. Raises TranslationError for a
    change it cannot read; never emits to a room outside the recipients."""
    handler = _HANDLERS.get(change.topic)
    if handler is None:
        raise TranslationError(f"unknown topic {change.topic!r}")
    try:
        result = handler(change, storage_public_base)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TranslationError(f"{change.topic} #{change.id}: {exc!r}") from exc
    emits = result.emits
    if result.pushes:
        emits += tuple(notification_mirror(p, change.created_at) for p in result.pushes)
    # Every event of a committed change names it: clients keep the last one
    # and ask for what they missed with `sync` after a reconnect.
    emits = tuple(Emit(e.event, e.rooms, {**e.payload, "event_id": change.id}) for e in emits)
    result = Translation(emits, result.pushes)
    _check_rooms(change, result)
    return result


def _check_rooms(change: Change, result: Translation) -> None:
    allowed = set(change.recipients)
    for emit in result.emits:
        for room in emit.rooms:
            kind, _, ident = room.partition("_")
            if kind in ("user", "global", "notifications") and ident not in allowed:
                raise TranslationError(f"{change.topic} #{change.id}: room {room} not a recipient")
            if kind == "conversation" and ident != str(change.conversation_id):
                raise TranslationError(f"{change.topic} #{change.id}: foreign room {room}")
    for push in result.pushes:
        if push.user_id not in allowed:
            raise TranslationError(f"{change.topic} #{change.id}: push to non-recipient")

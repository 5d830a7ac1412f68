"""Pure translation: one outbox change in, the Socket.IO emits (event, rooms,
payload) and push intents out. No I/O; table-tested in tests/unit.

Payload keys follow the seed document's event table exactly. Rooms only ever
name the change's own recipients (users of the conversation), so nobody else
can receive it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.errors import BridgeError
from bridge.views import (
    Json,
    bid_room,
    campaign_room,
    conversation_context,
    conversation_room,
    other_participant,
    public_message,
    public_user,
    unread_count_for,
    user_rooms,
)


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
    kind: str  # "message" | "flow" | "retract" (replaces a push about an unsent message)
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


def _subject_rooms(conversation: Json) -> tuple[str, ...]:
    rooms = [conversation_room(conversation["id"])]
    if conversation.get("bid_id"):
        rooms.append(bid_room(conversation["bid_id"]))
    if conversation.get("campaign_id"):
        rooms.append(campaign_room(conversation["campaign_id"]))
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


UNSENT_TEXT = "This message was unsent"


def _message_changed(change: Change, base: str) -> Translation:
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
    emits.append(
        Emit(
            "unread_count_updated",
            user_rooms(receiver_id),
            {
                "conversation_id": cid,
                "unread_count": unread_count_for(conversation, receiver_id),
                "action": "message_deleted",
                "timestamp": ts,
            },
        )
    )
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


def _messages_delivered(change: Change, base: str) -> Translation:
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
    "message.updated": _message_changed,
    "message.deleted": _message_changed,
    "messages.delivered": _messages_delivered,
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

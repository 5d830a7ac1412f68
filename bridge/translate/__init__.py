"""Pure translation: one outbox change in, the Socket.IO emits (event, rooms,
payload) and push intents out. No I/O; table-tested in tests/unit.

Payload keys follow the seed document's event table exactly. Rooms only ever
name the change's own recipients (users of the conversation), so nobody else
can receive it.
"""

from __future__ import annotations

from bridge.translate.conversations import conversation_created, state_changed
from bridge.translate.lifecycle import UNSENT_TEXT, message_changed
from bridge.translate.messages import message_created, preview
from bridge.translate.model import Change, Emit, PushIntent, Translation, TranslationError
from bridge.translate.profile import profile_updated
from bridge.translate.receipts import messages_delivered, messages_read

__all__ = [
    "UNSENT_TEXT",
    "Change",
    "Emit",
    "PushIntent",
    "Translation",
    "TranslationError",
    "notification_mirror",
    "preview",
    "translate",
]


_HANDLERS = {  # topic -> its translation, one module per topic family
    "message.created": message_created,
    "messages.read": messages_read,
    "conversation.created": conversation_created,
    "conversation.state_changed": state_changed,
    "profile.updated": profile_updated,
    "message.updated": message_changed,
    "message.deleted": message_changed,
    "messages.delivered": messages_delivered,
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
    if result.pushes:
        mirrors = tuple(notification_mirror(p, change.created_at) for p in result.pushes)
        result = Translation(result.emits + mirrors, result.pushes)
    # Every event of a committed change names it: clients keep the last one
    # and ask for what they missed with `sync` after a reconnect. (Set in
    # place: every payload is a dict the handler built for this change.)
    for emit in result.emits:
        emit.payload["event_id"] = change.id
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

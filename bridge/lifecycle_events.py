"""Socket events of a message after it was sent: edit, unsend and the
receiver's delivery ack (a mixin of bridge.server.SocketGateway; each event
is registered in CLIENT_EVENTS and answers the usual ack). What the others
see comes through the outbox (bridge/translate/lifecycle.py, receipts.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge import payloads
from bridge.views import public_message

if TYPE_CHECKING:
    from bridge.attachments.service import Attachments
    from bridge.server import SocketSession
    from bridge.store import Store

Ack = dict[str, Any]


class LifecycleEvents:
    store: Store
    attachments: Attachments | None
    max_message_chars: int

    async def edit_message(self, session: SocketSession, data: Any) -> Ack:
        """The sender's new text, within the edit window (enforced in SQL);
        `message_updated` reaches everyone through the outbox."""
        ref = payloads.message_ref(data)
        content = payloads.edited_text(data, self.max_message_chars)
        message = await self.store.edit_message(
            session.user_id, ref.message_id, content, ref.conversation_id
        )
        return {"ok": True, "message": public_message(message)}

    async def unsend_message(self, session: SocketSession, data: Any) -> Ack:
        """Unsends the sender's message (a tombstone stays); again is a no-op."""
        ref = payloads.message_ref(data)
        message = await self.store.unsend_message(
            session.user_id, ref.message_id, ref.conversation_id
        )
        if self.attachments is not None:
            self.attachments.unsent()  # its file goes now (bridge/attachments/removals.py)
        return {"ok": True, "message": public_message(message)}

    async def message_delivered(self, session: SocketSession, data: Any) -> Ack:
        """The receiver's device has these messages (its ack of
        `new_message`); the sender hears `message_delivered`."""
        ids = payloads.delivered_ids(data)
        delivered = await self.store.mark_delivered(session.user_id, ids)
        return {"ok": True, "delivered": delivered}

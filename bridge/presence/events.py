"""Socket events and relays of presence and typing: `user_status`,
`typing_start` / `typing_stop`, the `user_status_update` and typing relays
to partners (never between two who blocked one another), and the timers of
going offline after the grace and of typing that expired (a mixin of
bridge.server.SocketGateway; the events are registered in CLIENT_EVENTS)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bridge import payloads
from bridge.views import conversation_room, user_rooms

if TYPE_CHECKING:
    import socketio

    from bridge.presence import Presence, PresenceRegistry
    from bridge.safety.store import SafetyStore
    from bridge.server import SocketSession
    from bridge.store import Store

Ack = dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class PresenceEvents:
    sio: socketio.AsyncServer
    store: Store
    safety: SafetyStore
    presence: Presence
    registry: PresenceRegistry
    # user -> (when to check, the registry's token for that check)
    _offline_due: dict[str, tuple[float, str]]
    # (user, conversation) -> the other participant; participants never change
    _partners: dict[tuple[str, str], str]

    if TYPE_CHECKING:

        async def visible_partners(self, user_id: str) -> list[str]: ...

        async def _partner(self, session: SocketSession, conversation_id: str) -> str: ...

    async def user_gone(self, user_id: str) -> None:
        """The user was connected only to an instance that died: partners
        hear "offline" (with several instances, from a survivor)."""
        if self.presence.connections(user_id):
            return
        await self.store.touch_last_seen(user_id)
        await self._announce_status(user_id, "offline")

    async def _announce_status(self, user_id: str, status: str) -> None:
        partners = await self.visible_partners(user_id)
        if not partners:
            return
        rooms = [room for p in partners for room in user_rooms(p)]
        await self.sio.emit(
            "user_status_update",
            {"user_id": user_id, "status": status, "timestamp": now_iso()},
            to=rooms,
        )

    async def _presence_timers(self, now: float) -> None:
        """Offline after the grace; typing that was never stopped."""
        for user, (due, token) in list(self._offline_due.items()):
            if due <= now:
                del self._offline_due[user]
                if await self.registry.went_offline(user, token, now):
                    await self.store.touch_last_seen(user)
                    await self._announce_status(user, "offline")
        for conversation_id, user in self.presence.expired_typing(now):
            await self._relay_typing(user, conversation_id, False)

    async def _relay_typing(self, user_id: str, conversation_id: str, typing: bool) -> None:
        """`user_typing` to the conversation room (not to the typist's own
        devices) and `typing_status_update` to the partner's chat list;
        nothing when the two blocked one another."""
        partner = self._partners.get((user_id, conversation_id))
        if partner is not None and await self.safety.blocked_between(user_id, partner):
            return
        await self.sio.emit(
            "user_typing",
            {"conversationId": conversation_id, "userId": user_id, "isTyping": typing},
            to=conversation_room(conversation_id),
            skip_sid=self.presence.sids_of(user_id),
        )
        if partner is not None:
            await self.sio.emit(
                "typing_status_update",
                {
                    "conversation_id": conversation_id,
                    "user_id": user_id,
                    "is_typing": typing,
                    "timestamp": now_iso(),
                },
                to=list(user_rooms(partner)),
            )

    async def typing_start(self, session: SocketSession, data: Any) -> Ack:
        req = payloads.typing(data, session.user_id)
        await self._partner(session, req.conversation_id)
        if self.presence.typing_start(req.conversation_id, session.user_id, time.monotonic()):
            await self._relay_typing(session.user_id, req.conversation_id, True)
        return {"ok": True}

    async def typing_stop(self, session: SocketSession, data: Any) -> Ack:
        req = payloads.typing(data, session.user_id)
        await self._partner(session, req.conversation_id)
        if self.presence.typing_stop(req.conversation_id, session.user_id):
            await self._relay_typing(session.user_id, req.conversation_id, False)
        return {"ok": True}

    async def user_status(self, session: SocketSession, data: Any) -> Ack:
        status = payloads.user_status(data, session.user_id)
        if status == "offline":
            status = "away"  # connected sockets are never "offline"
        if await self.registry.set_status(session.user_id, status):
            await self._announce_status(session.user_id, status)
        return {"ok": True, "status": status}

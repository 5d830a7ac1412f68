"""Socket events of blocks, reports, mutes and quiet hours (a mixin of
bridge.server.SocketGateway; each event is registered in CLIENT_EVENTS and
takes the usual ack `{ ok: true, ... }` / `{ ok: false, error }`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bridge.payloads import id_payload
from bridge.safety import payloads
from bridge.safety.store import SafetyStore
from bridge.views import user_rooms

if TYPE_CHECKING:
    import socketio

    from bridge.presence import PresenceRegistry
    from bridge.server import SocketSession
    from bridge.store import Store

Ack = dict[str, Any]

SAFETY_EVENTS = (
    "block_user",
    "unblock_user",
    "report",
    "mute_conversation",
    "unmute_conversation",
    "set_quiet_hours",
)


class SafetyEvents:
    sio: socketio.AsyncServer
    store: Store
    safety: SafetyStore
    registry: PresenceRegistry

    async def visible_partners(self, user_id: str) -> list[str]:
        """Partners who may see `user_id`'s presence: not blocked either way."""
        return await self.safety.visible_partners(user_id)

    async def show_status_between(self, a: str, b: str, blocked: bool) -> None:
        """On a block each side sees the other go offline; on an unblock,
        their real status again."""
        statuses = await self.registry.statuses([a, b])
        stamp = datetime.now(UTC).isoformat()
        for who, to in ((a, b), (b, a)):
            status = "offline" if blocked else statuses[who]
            await self.sio.emit(
                "user_status_update",
                {"user_id": who, "status": status, "timestamp": stamp},
                to=list(user_rooms(to)),
            )

    async def block_user(self, session: SocketSession, data: Any) -> Ack:
        """`{ userId }`: no messages either way from now on, no typing or
        presence of one shown to the other, no pushes; history stays."""
        other = payloads.block_target(data, session.user_id)
        block = await self.safety.block(session.user_id, other)
        await self.show_status_between(session.user_id, other, True)
        return {"ok": True, "block": block}

    async def unblock_user(self, session: SocketSession, data: Any) -> Ack:
        other = payloads.block_target(data, session.user_id)
        removed = await self.safety.unblock(session.user_id, other)
        if removed and not await self.safety.blocked_between(session.user_id, other):
            await self.show_status_between(session.user_id, other, False)
        return {"ok": True, "unblocked": removed}

    async def report(self, session: SocketSession, data: Any) -> Ack:
        """`{ messageId | userId, reason, details? }`: stored for moderators;
        the reported user hears nothing of it."""
        report_id = await self.safety.report(session.user_id, payloads.report(data))
        return {"ok": True, "reportId": report_id}

    async def mute_conversation(self, session: SocketSession, data: Any) -> Ack:
        """`{ conversationId, until? }`: no alerting pushes about it until
        then (or until unmuted); events and unread counts go on."""
        mute = await self.safety.mute(session.user_id, payloads.mute(data))
        return {"ok": True, **mute}

    async def unmute_conversation(self, session: SocketSession, data: Any) -> Ack:
        conversation_id = id_payload(
            data, "conversationId", "conversation_id", field="conversationId"
        )
        assert conversation_id is not None
        removed = await self.safety.unmute(session.user_id, conversation_id)
        return {"ok": True, "conversation_id": conversation_id, "unmuted": removed}

    async def set_quiet_hours(self, session: SocketSession, data: Any) -> Ack:
        """`{ start, end, timeZone }` or null to clear."""
        hours = await self.safety.set_quiet_hours(session.user_id, payloads.quiet_hours(data))
        return {"ok": True, "quietHours": hours}

"""The Socket.IO side: authenticated connections, the seed's client events
with optional acks, rooms guarded by membership, sends, reads, token expiry
and replay. Presence and typing (bridge/presence/events.py), edits, unsends
and delivery acks (bridge/lifecycle_events.py) and blocks, reports and mutes
(bridge/safety/events.py) are mixed in. Messages are never emitted from
here: they are written to the database and reach everyone through the
outbox."""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio

from bridge import payloads
from bridge.attachments.api import ATTACHMENT_EVENTS, AttachmentEvents
from bridge.attachments.service import Attachments
from bridge.auth import Identity, TokenVerifier, bearer
from bridge.db_health import DatabaseHealth, is_outage
from bridge.errors import AuthError, BridgeError, PayloadError, unavailable
from bridge.lifecycle_events import LifecycleEvents
from bridge.limits import EVENT_KINDS, Limiter, connection_cap
from bridge.logs import Noise
from bridge.metrics import Metrics
from bridge.outbox.replay import replay_missed
from bridge.presence import Presence, PresenceRegistry
from bridge.presence.events import PresenceEvents, now_iso
from bridge.safety.events import SAFETY_EVENTS, SafetyEvents
from bridge.safety.store import SafetyStore
from bridge.store import Store
from bridge.views import conversation_room, global_room, public_message, user_room

log = logging.getLogger(__name__)
# Presence failures are logged rate-limited (bridge.logs.Noise).
PRESENCE_TROUBLE = Noise()

Ack = dict[str, Any]
Handler = Callable[["SocketSession", Any], Awaitable[Ack]]
# The seed's client events and the bridge's additions, one method each.
CLIENT_EVENTS = (
    "join",
    "join_global_updates",
    "request_global_notifications",
    "join_conversation",
    "leave_conversation",
    "join_bid",
    "join_campaign",
    "send_message",
    "typing_start",  # typing_*, user_status: bridge/presence/events.py
    "typing_stop",
    "mark_seen",
    "user_status",
    "refresh_token",
    "sync",
    "edit_message",  # edit_message, unsend_message, message_delivered: bridge/lifecycle_events.py
    "unsend_message",
    "message_delivered",
    *SAFETY_EVENTS,  # block_user, report, mute_conversation, ... (bridge/safety/)
    *ATTACHMENT_EVENTS,  # attachment_upload, attachment_url (bridge/attachments/)
)


def error_ack(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


@dataclass
class SocketSession:
    sid: str
    user_id: str
    expires_at: float | None


class SocketGateway(SafetyEvents, PresenceEvents, LifecycleEvents, AttachmentEvents):
    def __init__(
        self,
        sio: socketio.AsyncServer,
        store: Store,
        verifier: TokenVerifier,
        presence: Presence,
        registry: PresenceRegistry,
        metrics: Metrics,
        *,
        max_message_chars: int,
        storage_public_base: str,
        health: DatabaseHealth | None = None,
        limits: Limiter | None = None,
        max_sockets_per_user: int = 0,
        attachments: Attachments | None = None,
        attachments_public_url: str = "",
    ) -> None:
        self.sio = sio
        self.attachments = attachments
        self.attachments_public_url = attachments_public_url
        self.limits = limits
        self.max_sockets_per_user = max_sockets_per_user
        self.store = store
        self.safety = SafetyStore(store)
        self.health = health or DatabaseHealth(metrics)
        self.verifier = verifier
        self.presence = presence
        self.registry = registry
        self.metrics = metrics
        self.max_message_chars = max_message_chars
        self.storage_public_base = storage_public_base
        self.sessions: dict[str, SocketSession] = {}
        # (expires_at, sid): when each socket's token runs out
        self._expiries: list[tuple[float, str]] = []
        self._offline_due = {}  # bridge/presence/events.py
        self._partners = {}
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        for event in CLIENT_EVENTS:  # each handled by the method of its name
            sio.on(event, self._guarded(event, getattr(self, event)))

    # -- connection lifecycle ---------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        try:
            identity = await self._admit(environ, auth)
        except socketio.exceptions.ConnectionRefusedError as exc:
            refusal = exc.error_args.get("data") or {}
            self.metrics.connect_refused(str(refusal.get("code", "refused")))
            raise
        session = SocketSession(sid, identity.user_id, identity.expires_at)
        self.sessions[sid] = session
        self._expire_at(session)
        await self.sio.enter_room(sid, user_room(identity.user_id))
        self.metrics.connected()
        try:
            if await self.registry.connect(identity.user_id, sid):
                await self._announce_status(identity.user_id, "online")
        except Exception as exc:  # presence is best effort: the socket works without it
            self._presence_failed("connect", exc)

    def _presence_failed(self, on: str, exc: Exception) -> None:
        """Redis away or saturated: counted, one line a minute per kind, no
        traceback per socket (a reconnect storm would flood the log)."""
        self.metrics.inc("presence_errors")
        suppressed = PRESENCE_TROUBLE.should_log(on)
        if suppressed is not None:
            log.warning(
                "presence update failed; sockets work without it",
                extra={"on": on, "error": repr(exc), "suppressed": suppressed},
            )

    async def _admit(self, environ: dict[str, Any], auth: Any) -> Identity:
        """The connecting user, or ConnectionRefusedError with a code."""
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token or bearer(environ.get("HTTP_AUTHORIZATION"))
        try:
            identity = await self.verifier.verify(token)
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.as_dict()) from None
        claimed = auth.get("userId") if isinstance(auth, dict) else None
        if claimed is not None and claimed != identity.user_id:
            raise socketio.exceptions.ConnectionRefusedError(
                "auth.userId is not the token's user",
                {"code": "user_mismatch", "message": "auth.userId is not the token's user"},
            )
        try:
            known = await self.store.user_exists(identity.user_id)
        except Exception as exc:
            self.health.log_failure(exc, "connect check failed")
            raise socketio.exceptions.ConnectionRefusedError(
                "the service is unavailable; try again",
                {"code": "unavailable", "message": "the service is unavailable; try again"},
            ) from None
        if not known:
            raise socketio.exceptions.ConnectionRefusedError(
                "no chat profile for this user",
                {"code": "unknown_user", "message": "no chat profile for this user"},
            )
        await connection_cap(
            self.registry, self.metrics, identity.user_id, self.max_sockets_per_user
        )
        return identity

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        session = self.sessions.pop(sid, None)
        if self.limits is not None:
            self.limits.forget_socket(sid)
        if session is None:
            return
        user = session.user_id
        try:
            await self.registry.drop_views(user, sid)
            token = await self.registry.disconnect(user, sid, time.monotonic())
        except Exception as exc:  # presence is best effort
            self._presence_failed("disconnect", exc)
            token = None
        if token is not None:
            self._offline_due[user] = (time.monotonic() + self.presence.grace, token)
        if not self.presence.connections(user):
            for conversation_id in self.presence.typing_of(user):
                await self._relay_typing(user, conversation_id, False)

    async def tick(self) -> None:
        """Timers: offline after grace, typing expiry, token expiry."""
        await self._presence_timers(time.monotonic())
        wall = time.time()
        while self._expiries and self._expiries[0][0] <= wall:
            expires_at, sid = heapq.heappop(self._expiries)
            session = self.sessions.get(sid)
            # Gone, or refreshed since (a later entry stands for it).
            if session is None or session.expires_at != expires_at:
                continue
            await self.sio.emit(
                "token_expired",
                {"code": "expired_token", "message": "the access token expired"},
                to=session.sid,
            )
            await self.sio.disconnect(session.sid)

    def _expire_at(self, session: SocketSession) -> None:
        """Token expiry: a heap, so the timer looks at due sockets only
        (with thousands of sockets a scan of all of them 4 times a second
        showed in profiles)."""
        if session.expires_at is not None:
            heapq.heappush(self._expiries, (session.expires_at, session.sid))

    async def run_timers(self, interval: float = 0.25) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.log_failure(exc, "socket timers failed")
            await asyncio.sleep(interval)

    # -- event plumbing ---------------------------------------------------------

    def _guarded(self, event: str, handler: Handler) -> Callable[..., Awaitable[Ack]]:
        @functools.wraps(handler)
        async def wrapper(sid: str, data: Any = None, *_rest: Any) -> Ack:
            ack = await self._answer(event, handler, sid, data)
            error = ack.get("error") if not ack.get("ok") else None
            code = error.get("code") if isinstance(error, dict) else None
            self.metrics.client_event(event, "ok" if error is None else str(code))
            return ack

        return wrapper

    async def _answer(self, event: str, handler: Handler, sid: str, data: Any) -> Ack:
        session = self.sessions.get(sid)
        if session is None:
            return error_ack("unauthorized", "not connected")
        try:
            if self.limits is not None:
                await self.limits.check(session.user_id, EVENT_KINDS.get(event, "other"), sid)
            return await handler(session, data)
        except BridgeError as exc:
            return exc.ack()
        except Exception as exc:
            if is_outage(exc):
                self.health.failed(exc)
                return unavailable().ack()
            self.metrics.inc("event_errors")
            log.exception("socket event failed", extra={"event": event, "sid": sid})
            return error_ack("internal", "the event could not be handled")

    def _own_user(self, session: SocketSession, data: Any) -> None:
        user = payloads.id_payload(data, "userId", "user_id", field="userId", required=False)
        if user is not None and user != session.user_id:
            raise PayloadError("forbidden", "you can only join your own rooms", "userId")

    async def _partner(self, session: SocketSession, conversation_id: str) -> str:
        key = (session.user_id, conversation_id)
        partner = self._partners.get(key)
        if partner is None:
            partner = await self.store.conversation_partner(session.user_id, conversation_id)
            if partner is None:
                # The same answer as for a conversation that does not exist.
                raise PayloadError("not_found", "conversation not found", "conversationId")
            self._partners[key] = partner
        return partner

    # -- rooms ------------------------------------------------------------------

    async def join(self, session: SocketSession, data: Any) -> Ack:
        self._own_user(session, data)
        await self.sio.enter_room(session.sid, user_room(session.user_id))
        statuses = await self.registry.statuses(await self.visible_partners(session.user_id))
        online = [p for p, status in statuses.items() if status != "offline"]
        for partner in online:
            await self.sio.emit(
                "user_status_update",
                {"user_id": partner, "status": statuses[partner], "timestamp": now_iso()},
                to=session.sid,
            )
        return {"ok": True, "room": user_room(session.user_id), "onlineUsers": online}

    async def join_global_updates(self, session: SocketSession, data: Any) -> Ack:
        self._own_user(session, data)
        await self.sio.enter_room(session.sid, global_room(session.user_id))
        return {"ok": True, "room": global_room(session.user_id)}

    async def request_global_notifications(self, session: SocketSession, data: Any) -> Ack:
        self._own_user(session, data)
        await self.sio.enter_room(session.sid, f"notifications_{session.user_id}")
        return {"ok": True, "room": f"notifications_{session.user_id}"}

    async def join_conversation(self, session: SocketSession, data: Any) -> Ack:
        conversation_id = payloads.id_payload(
            data, "conversationId", "conversation_id", field="conversationId"
        )
        assert conversation_id is not None
        partner = await self._partner(session, conversation_id)
        await self.sio.enter_room(session.sid, conversation_room(conversation_id))
        await self.registry.set_viewing(session.user_id, session.sid, conversation_id, True)
        return {
            "ok": True,
            "room": conversation_room(conversation_id),
            "partner": {
                "user_id": partner,
                "status": "offline"
                if await self.safety.blocked_between(session.user_id, partner)
                else (await self.registry.statuses([partner]))[partner],
            },
        }

    async def leave_conversation(self, session: SocketSession, data: Any) -> Ack:
        conversation_id = payloads.id_payload(
            data, "conversationId", "conversation_id", field="conversationId"
        )
        assert conversation_id is not None
        await self.sio.leave_room(session.sid, conversation_room(conversation_id))
        await self.registry.set_viewing(session.user_id, session.sid, conversation_id, False)
        if self.presence.typing_stop(conversation_id, session.user_id):
            await self._relay_typing(session.user_id, conversation_id, False)
        return {"ok": True}

    async def _join_subject(self, session: SocketSession, data: Any, kind: str) -> Ack:
        key = f"{kind}Id"
        ident = payloads.id_payload(data, key, f"{kind}_id", field=key)
        assert ident is not None
        if not await self.store.may_join(session.user_id, kind, ident):
            raise PayloadError("not_found", f"{kind} not found", key)
        await self.sio.enter_room(session.sid, f"{kind}_{ident}")
        return {"ok": True, "room": f"{kind}_{ident}"}

    async def join_bid(self, session: SocketSession, data: Any) -> Ack:
        return await self._join_subject(session, data, "bid")

    async def join_campaign(self, session: SocketSession, data: Any) -> Ack:
        return await self._join_subject(session, data, "campaign")

    # -- messages ---------------------------------------------------------------

    async def send_message(self, session: SocketSession, data: Any) -> Ack:
        req = payloads.send_message(data, session.user_id, self.max_message_chars)
        if self.attachments is not None:
            await self.attachments.check_send(session.user_id, req)
        message, created = await self.store.send_message(session.user_id, req)
        if self.presence.typing_stop(req.conversation_id, session.user_id):
            await self._relay_typing(session.user_id, req.conversation_id, False)
        return {"ok": True, "message": public_message(message), "duplicate": not created}

    async def mark_seen(self, session: SocketSession, data: Any) -> Ack:
        req = payloads.mark_seen(data, session.user_id)
        conversation_id, marked = await self.store.mark_seen(session.user_id, req)
        return {"ok": True, "conversationId": conversation_id, "marked": marked}

    # -- tokens and replay ------------------------------------------------------

    async def refresh_token(self, session: SocketSession, data: Any) -> Ack:
        token = data.get("token") if isinstance(data, dict) else data
        try:
            identity = await self.verifier.verify(token if isinstance(token, str) else None)
        except AuthError as exc:
            return exc.ack()
        if identity.user_id != session.user_id:
            return error_ack("user_mismatch", "the new token is for another user")
        session.expires_at = identity.expires_at
        self._expire_at(session)
        return {"ok": True, "expiresAt": identity.expires_at}

    async def sync(self, session: SocketSession, data: Any) -> Ack:
        """Replays, to this socket only, what it missed since `lastEventId`
        (the `event_id` of the last event it saw), in order, for the rooms it
        is in now; or answers `resync: true` when that is too far back (then
        reload the chat list and messages over REST). Delivery around the
        reconnect is at-least-once: drop events whose event_id you have."""
        return await replay_missed(
            self.store,
            self.sio,
            session.sid,
            session.user_id,
            payloads.last_event_id(data),
            self.storage_public_base,
        )

    def online_count(self) -> int:
        return len(self.sessions)

"""The Socket.IO side: authenticated connections, the seed's client events
with optional acks, rooms guarded by membership, presence and typing relays.
Messages are never emitted from here: they are written to the database and
reach everyone through the outbox."""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import socketio

from bridge import payloads
from bridge.auth import AuthError, TokenVerifier, bearer
from bridge.db_health import DatabaseHealth, is_outage
from bridge.metrics import Metrics
from bridge.payloads import PayloadError
from bridge.presence import Presence
from bridge.presence_redis import PresenceRegistry
from bridge.relay import to_change
from bridge.store import Store
from bridge.store_errors import StoreError, unavailable
from bridge.translate import TranslationError, public_message, translate, user_rooms

log = logging.getLogger(__name__)

Ack = dict[str, Any]
MAX_REPLAY = 1000  # more missed changes than this: the client resyncs over REST
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
    "typing_start",
    "typing_stop",
    "mark_seen",
    "user_status",
    "refresh_token",
    "sync",
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def error_ack(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


@dataclass
class SocketSession:
    sid: str
    user_id: str
    expires_at: float | None


class SocketGateway:
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
    ) -> None:
        self.sio = sio
        self.store = store
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
        # user -> (when to check, the registry's token for that check)
        self._offline_due: dict[str, tuple[float, str]] = {}
        # (user, conversation) -> the other participant; participants never change
        self._partners: dict[tuple[str, str], str] = {}
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        for event in CLIENT_EVENTS:  # each handled by the method of its name
            sio.on(event, self._guarded(event, getattr(self, event)))

    # -- connection lifecycle ---------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token or bearer(environ.get("HTTP_AUTHORIZATION"))
        try:
            identity = await self.verifier.verify(token)
        except AuthError as exc:
            self.metrics.inc("connects_refused")
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
        session = SocketSession(sid, identity.user_id, identity.expires_at)
        self.sessions[sid] = session
        self._expire_at(session)
        await self.sio.enter_room(sid, f"user_{identity.user_id}")
        self.metrics.inc("connects")
        try:
            if await self.registry.connect(identity.user_id, sid):
                await self._announce_status(identity.user_id, "online")
        except Exception:  # presence is best effort: the socket works without it
            log.exception("presence update on connect failed")

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        user = session.user_id
        try:
            await self.registry.drop_views(user, sid)
            token = await self.registry.disconnect(user, sid, time.monotonic())
        except Exception:  # presence is best effort
            log.exception("presence update on disconnect failed")
            token = None
        if token is not None:
            self._offline_due[user] = (time.monotonic() + self.presence.grace, token)
        if not self.presence.connections(user):
            for conversation_id in self.presence.typing_of(user):
                await self._relay_typing(user, conversation_id, False)

    async def user_gone(self, user_id: str) -> None:
        """The user was connected only to an instance that died: partners
        hear "offline" (with several instances, from a survivor)."""
        if self.presence.connections(user_id):
            return
        await self.store.touch_last_seen(user_id)
        await self._announce_status(user_id, "offline")

    async def _announce_status(self, user_id: str, status: str) -> None:
        partners = await self.store.partners(user_id)
        if not partners:
            return
        rooms = [room for p in partners for room in user_rooms(p)]
        await self.sio.emit(
            "user_status_update",
            {"user_id": user_id, "status": status, "timestamp": now_iso()},
            to=rooms,
        )

    async def tick(self) -> None:
        """Timers: offline after grace, typing expiry, token expiry."""
        now = time.monotonic()
        for user, (due, token) in list(self._offline_due.items()):
            if due <= now:
                del self._offline_due[user]
                if await self.registry.went_offline(user, token, now):
                    await self.store.touch_last_seen(user)
                    await self._announce_status(user, "offline")
        for conversation_id, user in self.presence.expired_typing(now):
            await self._relay_typing(user, conversation_id, False)
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
            self.metrics.inc("events_in")
            session = self.sessions.get(sid)
            if session is None:
                return error_ack("unauthorized", "not connected")
            try:
                return await handler(session, data)
            except PayloadError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except StoreError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except Exception as exc:
                if is_outage(exc):
                    self.health.failed(exc)
                    return {"ok": False, "error": unavailable().as_dict()}
                self.metrics.inc("event_errors")
                log.exception("socket event failed", extra={"event": event, "sid": sid})
                return error_ack("internal", "the event could not be handled")

        return wrapper

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
        await self.sio.enter_room(session.sid, f"user_{session.user_id}")
        statuses = await self.registry.statuses(await self.store.partners(session.user_id))
        online = [p for p, status in statuses.items() if status != "offline"]
        for partner in online:
            await self.sio.emit(
                "user_status_update",
                {"user_id": partner, "status": statuses[partner], "timestamp": now_iso()},
                to=session.sid,
            )
        return {"ok": True, "room": f"user_{session.user_id}", "onlineUsers": online}

    async def join_global_updates(self, session: SocketSession, data: Any) -> Ack:
        self._own_user(session, data)
        await self.sio.enter_room(session.sid, f"global_{session.user_id}")
        return {"ok": True, "room": f"global_{session.user_id}"}

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
        await self.sio.enter_room(session.sid, f"conversation_{conversation_id}")
        await self.registry.set_viewing(session.user_id, session.sid, conversation_id, True)
        return {
            "ok": True,
            "room": f"conversation_{conversation_id}",
            "partner": {
                "user_id": partner,
                "status": (await self.registry.statuses([partner]))[partner],
            },
        }

    async def leave_conversation(self, session: SocketSession, data: Any) -> Ack:
        conversation_id = payloads.id_payload(
            data, "conversationId", "conversation_id", field="conversationId"
        )
        assert conversation_id is not None
        await self.sio.leave_room(session.sid, f"conversation_{conversation_id}")
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
        message, created = await self.store.send_message(session.user_id, req)
        if self.presence.typing_stop(req.conversation_id, session.user_id):
            await self._relay_typing(session.user_id, req.conversation_id, False)
        return {"ok": True, "message": public_message(message), "duplicate": not created}

    async def mark_seen(self, session: SocketSession, data: Any) -> Ack:
        req = payloads.mark_seen(data, session.user_id)
        conversation_id, marked = await self.store.mark_seen(session.user_id, req)
        return {"ok": True, "conversationId": conversation_id, "marked": marked}

    # -- ephemeral signals ------------------------------------------------------

    async def _relay_typing(self, user_id: str, conversation_id: str, typing: bool) -> None:
        """`user_typing` to the conversation room (not to the typist's own
        devices) and `typing_status_update` to the partner's chat list."""
        await self.sio.emit(
            "user_typing",
            {"conversationId": conversation_id, "userId": user_id, "isTyping": typing},
            to=f"conversation_{conversation_id}",
            skip_sid=self.presence.sids_of(user_id),
        )
        partner = self._partners.get((user_id, conversation_id))
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

    async def refresh_token(self, session: SocketSession, data: Any) -> Ack:
        token = data.get("token") if isinstance(data, dict) else data
        try:
            identity = await self.verifier.verify(token if isinstance(token, str) else None)
        except AuthError as exc:
            return {"ok": False, "error": exc.as_dict()}
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
        raw = payloads.last_event_id(data)
        rows, complete = await self.store.missed_changes(session.user_id, raw, MAX_REPLAY)
        latest = await self.store.latest_change_id()
        if not complete:
            return {"ok": True, "resync": True, "replayed": 0, "lastEventId": latest}
        rooms = set(self.sio.rooms(session.sid))
        replayed = 0
        for row in rows:
            try:
                result = translate(to_change(row), self.storage_public_base)
            except TranslationError:
                continue
            for emit in result.emits:
                if rooms.intersection(emit.rooms):
                    await self.sio.emit(emit.event, emit.payload, to=session.sid)
                    replayed += 1
        last = int(rows[-1]["id"]) if rows else max(raw, 0)
        return {"ok": True, "resync": False, "replayed": replayed, "lastEventId": last}

    def online_count(self) -> int:
        return len(self.sessions)

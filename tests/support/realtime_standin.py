"""A local stand-in for Supabase Realtime's Postgres Changes, faithful to
the wire: Phoenix v1 JSON frames ({topic, event, payload, ref, join_ref},
`ref` always present), heartbeats answered, `phx_join` replies echoing the
requested bindings with stable non-zero ids, the "Subscribed to PostgreSQL"
system message arriving only after the join reply (changes in between are
not delivered), `access_token` pushes, `phx_leave` / `phx_close`.

It is driven by real Postgres: committed bridge.outbox rows are read from
the database and pushed as postgres_changes INSERT events to live
subscriptions. Like the real service it is at-most-once: a change that
happens while a client is disconnected or not yet live is never sent.

Failure modes, for tests: drop every connection without a close frame,
close with a code, send `phx_error`, send a system error followed by
`phx_close`, never announce readiness, refuse joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
from aiohttp import WSMsgType, web


@dataclass
class Subscription:
    topic: str
    join_ref: str | None
    bindings: list[dict[str, Any]]
    token: str = ""
    live: bool = False


@dataclass
class Client:
    ws: web.WebSocketResponse
    token: str
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


def binding_id(binding: dict[str, Any]) -> int:
    key = (
        f"{binding.get('event')}:{binding.get('schema')}:{binding.get('table')}:"
        f"{binding.get('filter')}"
    )
    return zlib.crc32(key.encode()) % 100_000_000 + 1


class RealtimeStandIn:
    def __init__(self, dsn: str, jwt_secret: str) -> None:
        self.dsn = dsn
        self.jwt_secret = jwt_secret
        self.clients: list[Client] = []
        self.ready_delay = 0.05
        self.stall_ready = False
        self.refuse_joins = False
        self.ignore_joins = False  # no reply at all: the client's join times out
        self.expired_closes = 0
        self.delivered = 0
        self.lost = 0
        self.joins = 0
        self.access_tokens: list[str] = []
        self.heartbeats = 0
        self._last_id = 0
        self._runner: web.AppRunner | None = None
        self._feed: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> str:
        conn = await asyncpg.connect(self.dsn)
        try:
            self._last_id = await conn.fetchval("select coalesce(max(id), 0) from bridge.outbox")
        finally:
            await conn.close()
        app = web.Application()
        app.router.add_get("/realtime/v1/websocket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._feed = asyncio.create_task(self._changes())
        return self.url

    async def stop(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- failure modes ----------------------------------------------------------

    async def drop_connections(self) -> None:
        """Connections vanish without a close frame (network loss)."""
        for client in list(self.clients):
            transport = client.ws._req.transport if client.ws._req else None
            if transport is not None:
                transport.abort()
        self.clients.clear()

    async def close_connections(self, code: int = 1011) -> None:
        for client in list(self.clients):
            await client.ws.close(code=code, message=b"server shutting down")
        self.clients.clear()

    async def send_phx_error(self) -> None:
        for client in self.clients:
            for sub in client.subscriptions.values():
                sub.live = False
                await self._send(client, sub.topic, "phx_error", {}, sub.join_ref)

    async def _system(
        self, client: Client, sub: Subscription, extension: str, message: str, status: str
    ) -> None:
        """A system message on the channel (readiness, or an error)."""
        payload = {
            "channel": sub.topic.removeprefix("realtime:"),
            "extension": extension,
            "message": message,
            "status": status,
        }
        await self._send(client, sub.topic, "system", payload, None)

    async def _close_channel(self, client: Client, sub: Subscription, why: str) -> None:
        """A system error, then phx_close: the channel is gone."""
        sub.live = False
        await self._system(client, sub, "system", why, "error")
        await self._send(client, sub.topic, "phx_close", {}, sub.join_ref)
        client.subscriptions.pop(sub.topic, None)

    async def system_error_then_close(self) -> None:
        for client in self.clients:
            for sub in list(client.subscriptions.values()):
                await self._close_channel(client, sub, '{:error, "Unable to subscribe to changes"}')

    @property
    def live_subscriptions(self) -> int:
        return sum(s.live for c in self.clients for s in c.subscriptions.values())

    # -- protocol ---------------------------------------------------------------

    def _claims(self, token: str, verify_exp: bool = True) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.jwt_secret,
                algorithms=["HS256"],
                options={"verify_aud": False, "verify_exp": verify_exp},
            )
        except jwt.PyJWTError:
            return None
        return claims

    def _authorised(self, token: str) -> bool:
        claims = self._claims(token)
        return claims is not None and claims.get("role") in (
            "service_role",
            "anon",
            "authenticated",
        )

    async def _send(
        self,
        client: Client,
        topic: str,
        event: str,
        payload: dict[str, Any],
        ref: str | None,
        join_ref: str | None = None,
    ) -> None:
        if client.ws.closed:
            return
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref}
        if join_ref is not None:
            frame["join_ref"] = join_ref
        with contextlib.suppress(ConnectionError, RuntimeError):
            await client.ws.send_str(json.dumps(frame))

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("apikey", "")
        if request.query.get("vsn") != "1.0.0":
            return web.json_response({"message": "unsupported vsn"}, status=400)
        if not self._authorised(token):
            return web.json_response({"message": "Invalid API key"}, status=403)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = Client(ws, token)
        self.clients.append(client)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                try:
                    frame = json.loads(msg.data)
                    await self._handle(client, frame)
                except (ValueError, KeyError, TypeError):
                    await ws.close(code=1003, message=b"malformed frame")
        finally:
            if client in self.clients:
                self.clients.remove(client)
        return ws

    async def _handle(self, client: Client, frame: dict[str, Any]) -> None:
        topic, event, ref = frame["topic"], frame["event"], frame.get("ref")
        payload = frame.get("payload") or {}
        if topic == "phoenix" and event == "heartbeat":
            self.heartbeats += 1
            await self._send(client, "phoenix", "phx_reply", {"status": "ok", "response": {}}, ref)
        elif event == "phx_join":
            await self._join(client, topic, payload, ref, frame.get("join_ref") or ref)
        elif event == "access_token":
            new = str(payload.get("access_token", ""))
            self.access_tokens.append(new)
            sub = client.subscriptions.get(topic)
            if sub is not None and self._authorised(new):
                sub.token = new
            elif sub is not None:
                await self._expire(client, sub, "Invalid token")
        elif event == "phx_leave":
            client.subscriptions.pop(topic, None)
            await self._send(client, topic, "phx_reply", {"status": "ok", "response": {}}, ref)
            await self._send(client, topic, "phx_close", {}, ref)
        else:
            await self._send(
                client,
                topic,
                "phx_reply",
                {"status": "error", "response": {"reason": "unknown event"}},
                ref,
            )

    async def _join(
        self,
        client: Client,
        topic: str,
        payload: dict[str, Any],
        ref: str | None,
        join_ref: str | None,
    ) -> None:
        self.joins += 1
        if self.ignore_joins:
            return
        token = str(payload.get("access_token") or client.token)
        if self.refuse_joins or not self._authorised(token):
            await self._send(
                client,
                topic,
                "phx_reply",
                {"status": "error", "response": {"reason": "Unauthorized"}},
                ref,
                join_ref,
            )
            return
        requested = (payload.get("config") or {}).get("postgres_changes") or []
        bindings = [{**b, "id": binding_id(b)} for b in requested]
        sub = Subscription(topic, join_ref, bindings, token)
        client.subscriptions[topic] = sub
        await self._send(
            client,
            topic,
            "phx_reply",
            {"status": "ok", "response": {"postgres_changes": bindings}},
            ref,
            join_ref,
        )
        if not self.stall_ready:
            asyncio.get_running_loop().call_later(
                self.ready_delay, lambda: asyncio.ensure_future(self._ready(client, sub))
            )

    async def _ready(self, client: Client, sub: Subscription) -> None:
        if client not in self.clients or client.subscriptions.get(sub.topic) is not sub:
            return
        sub.live = True
        await self._system(client, sub, "postgres_changes", "Subscribed to PostgreSQL", "ok")

    # -- the change feed (from the real database) -------------------------------

    async def _expire(self, client: Client, sub: Subscription, why: str) -> None:
        """What Realtime does when a channel's token runs out."""
        self.expired_closes += 1
        await self._close_channel(client, sub, why)

    async def _expire_tokens(self) -> None:
        now = time.time()
        for client in list(self.clients):
            for sub in list(client.subscriptions.values()):
                claims = self._claims(sub.token, verify_exp=False) or {}
                if float(claims.get("exp", now + 1)) <= now:
                    await self._expire(client, sub, "Token has expired 0 seconds ago")

    async def _changes(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                await self._expire_tokens()
                rows = await conn.fetch(
                    "select id, topic, conversation_id::text, created_at from bridge.outbox"
                    " where id > $1 order by id",
                    self._last_id,
                )
                for row in rows:
                    self._last_id = row["id"]
                    await self._publish(row)
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async def _publish(self, row: asyncpg.Record) -> None:
        record = {"id": row["id"], "topic": row["topic"], "conversation_id": row["conversation_id"]}
        sent = False
        for client in list(self.clients):
            for sub in client.subscriptions.values():
                ids = [
                    b["id"]
                    for b in sub.bindings
                    if b.get("schema") == "bridge"
                    and b.get("table") == "outbox"
                    and b.get("event") in ("INSERT", "*")
                ]
                if not sub.live or not ids:
                    continue
                await self._send(
                    client,
                    sub.topic,
                    "postgres_changes",
                    {
                        "data": {
                            "schema": "bridge",
                            "table": "outbox",
                            "commit_timestamp": row["created_at"].isoformat(),
                            "type": "INSERT",
                            "errors": None,
                            "columns": [
                                {"name": "id", "type": "int8"},
                                {"name": "topic", "type": "text"},
                                {"name": "conversation_id", "type": "uuid"},
                            ],
                            "record": record,
                        },
                        "ids": ids,
                    },
                    None,
                )
                sent = True
        if sent:
            self.delivered += 1
        else:
            self.lost += 1

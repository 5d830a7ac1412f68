"""A local stand-in for hosted Supabase Realtime, faithful to the wire:
Phoenix v1 JSON frames ({topic, event, payload, ref, join_ref}), heartbeats
answered, `phx_join` replies echoing postgres_changes bindings with stable
ids, `access_token` pushes, `phx_leave` / `phx_close`, system messages.

Driven by real Postgres, both ways Realtime hears a database:
- postgres_changes: a replication poller at the hosted cadence (supabase/
  realtime replication_poller.ex: again at once after a batch with changes,
  else after poll_interval_ms x 5 = 500 ms; at most 100 changes a poll),
  for bridge.outbox INSERTs while the table is in `supabase_realtime`.
  "Subscribed to PostgreSQL" arrives only after the join reply.
- Broadcast from Database: rows `realtime.send` writes into realtime.messages
  are streamed (read every 20 ms here) to channels on their topic; private
  channels are authorized as Realtime does it, by inserting and reading back
  probe rows as the joining role under the real RLS policies. With
  `config.broadcast.replication_ready` the channel hears "Replication
  connection established" once the stream is up.
Like the real service it is at-most-once: nothing is replayed to a channel
that was not there.

Hosted behaviours: the tenant's events-per-second limit (silent drops), a
deaf channel (joined, nothing delivered: a lost subscription or a stopped
poller), private-only projects refusing public joins ("PrivateOnly"), new
API keys and asymmetric signing keys (realtime_standin_auth.py). Failure
modes: drop connections, close with a code, `phx_error`, a system error then
`phx_close`, never announce readiness, refuse or ignore joins.
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
from aiohttp import WSMsgType, web

from tests.support.realtime_standin_auth import EventsPerSecond, ProjectKeys, Refused
from tests.support.realtime_standin_db import (
    REALTIME_SCHEMA,
    Unseen,
    may_read,
    outbox_insert,
)

IDLE_POLL = 0.5  # poll_interval_ms (100) x @idle_multiplier (5)
MAX_CHANGES = 100
STREAM_EVERY = 0.02


@dataclass
class Subscription:
    topic: str
    join_ref: str | None
    bindings: list[dict[str, Any]]
    token: str = ""
    private: bool = False
    live: bool = False  # postgres_changes: after "Subscribed to PostgreSQL"
    deaf: bool = False  # joined, but the server delivers it nothing


@dataclass
class Client:
    ws: web.WebSocketResponse
    token: str  # the socket's own token (what the gateway made of the apikey)
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
        self.keys = ProjectKeys(jwt_secret)
        self.rate = EventsPerSecond()
        self.clients: list[Client] = []
        self.ready_delay = 0.05
        self.stall_ready = False
        self.refuse_joins = False
        self.ignore_joins = False  # no reply at all: the client's join times out
        self.private_only = False
        self.idle_poll = IDLE_POLL
        self.expired_closes = 0
        self.delivered = 0  # changes or broadcasts sent to at least one channel
        self.lost = 0  # nobody (live) to send them to
        self.joins = 0
        self.refusals: list[str] = []
        self.access_tokens: list[str] = []
        self.heartbeats = 0
        self._outbox = Unseen()
        self._messages = Unseen()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: asyncpg.Connection | None = None
        self._auth_lock = asyncio.Lock()
        self.url = ""

    async def start(self) -> str:
        """Creates Realtime's schema, as Realtime does on a project it
        serves, and the bridge's policies on it (on a hosted project the
        schema predates the bridge's migration, which installs them)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(REALTIME_SCHEMA)
            await conn.execute(
                "do $$ begin if to_regprocedure('bridge.realtime_doorbell_policies()')"
                " is not null then perform bridge.realtime_doorbell_policies(); end if; end $$"
            )
            self._outbox = Unseen(
                await conn.fetchval("select coalesce(max(id), 0) from bridge.outbox")
            )
            self._messages = Unseen(
                await conn.fetchval("select coalesce(max(standin_seq), 0) from realtime.messages")
            )
        finally:
            await conn.close()
        self._conn = await asyncpg.connect(self.dsn)
        app = web.Application()
        app.router.add_get("/realtime/v1/websocket", self._socket)
        app.router.add_get("/auth/v1/.well-known/jwks.json", self._jwks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._tasks = [
            asyncio.create_task(self._poller()),
            asyncio.create_task(self._stream()),
        ]
        return self.url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._conn is not None:
            await self._conn.close()

    # -- failure modes and hosted behaviours --------------------------------------

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

    async def system_error_then_close(self) -> None:
        for client in self.clients:
            for sub in list(client.subscriptions.values()):
                await self._close_channel(client, sub, "Unable to subscribe to changes")

    def go_deaf(self) -> None:
        """Every channel joined so far stays joined and hears nothing more:
        a cold restart lost its subscription, or its poller stopped. New
        joins are served."""
        for client in self.clients:
            for sub in client.subscriptions.values():
                sub.deaf = True

    def app_events(self, count: int) -> None:
        """The app's own clients' events, counted against the same tenant limit."""
        self.rate.admit(count)

    @property
    def polled_up_to(self) -> int:
        """The last outbox id the replication poller has looked at."""
        return self._outbox.high

    @property
    def live_subscriptions(self) -> int:
        return sum(s.live for c in self.clients for s in c.subscriptions.values())

    # -- protocol -------------------------------------------------------------------

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response(self.keys.jwks())

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

    async def _system(
        self, client: Client, sub: Subscription, extension: str, message: str, status: str
    ) -> None:
        payload = {
            "channel": sub.topic.removeprefix("realtime:"),
            "extension": extension,
            "message": message,
            "status": status,
        }
        await self._send(client, sub.topic, "system", payload, None)

    async def _close_channel(self, client: Client, sub: Subscription, why: str) -> None:
        """shutdown_response: a system error, then phx_close."""
        sub.live = False
        await self._system(client, sub, "system", why, "error")
        await self._send(client, sub.topic, "phx_close", {}, sub.join_ref)
        client.subscriptions.pop(sub.topic, None)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("vsn") != "1.0.0":
            return web.json_response({"message": "unsupported vsn"}, status=400)
        try:
            token = self.keys.api_key_token(request.query.get("apikey", ""))
        except Refused as exc:
            self.refusals.append(exc.reason)
            return web.json_response({"message": exc.reason}, status=403)
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
            await self._access_token(client, topic, str(payload.get("access_token", "")))
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

    async def _access_token(self, client: Client, topic: str, new: str) -> None:
        self.access_tokens.append(new)
        sub = client.subscriptions.get(topic)
        if sub is None or new.startswith("sb_"):
            return  # an API key: the channel keeps the socket's token
        try:
            self.keys.claims(new)
        except Refused as exc:
            await self._expire(client, sub, exc.reason.partition(": ")[2] or exc.reason)
            return
        sub.token = new

    def _join_token(self, client: Client, payload: dict[str, Any]) -> str:
        token = str(payload.get("access_token") or "")
        return client.token if not token or token.startswith("sb_") else token

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
        config = payload.get("config") or {}
        private = bool(config.get("private"))
        token = self._join_token(client, payload)
        reason = await self._refusal(token, topic, private)
        if reason is not None:
            self.refusals.append(reason)
            await self._send(
                client, topic, "phx_reply", {"status": "error", "response": {"reason": reason}}, ref
            )
            return
        requested = config.get("postgres_changes") or []
        bindings = [{**b, "id": binding_id(b)} for b in requested]
        sub = Subscription(topic, join_ref, bindings, token, private)
        client.subscriptions[topic] = sub
        await self._send(
            client,
            topic,
            "phx_reply",
            {"status": "ok", "response": {"postgres_changes": bindings}},
            ref,
            join_ref,
        )
        replication_ready = bool((config.get("broadcast") or {}).get("replication_ready"))
        if not self.stall_ready and (bindings or replication_ready):
            asyncio.get_running_loop().call_later(
                self.ready_delay,
                lambda: asyncio.ensure_future(self._ready(client, sub, bool(bindings))),
            )

    async def _refusal(self, token: str, topic: str, private: bool) -> str | None:
        """Why a join is refused, in the server's words (None: welcome)."""
        if self.refuse_joins:
            return "Unauthorized: You do not have permissions to read from this Channel topic"
        if self.private_only and not private:
            return "PrivateOnly: This project only allows private channels"
        try:
            claims = self.keys.claims(token)
        except Refused as exc:
            return exc.reason
        if private and not await self._may_read(claims, topic.removeprefix("realtime:")):
            return (
                "Unauthorized: You do not have permissions to read from this Channel topic: "
                + topic.removeprefix("realtime:")
            )
        return None

    async def _may_read(self, claims: dict[str, Any], sub_topic: str) -> bool:
        assert self._conn is not None
        async with self._auth_lock:
            return await may_read(self._conn, claims, sub_topic)

    async def _ready(self, client: Client, sub: Subscription, postgres: bool) -> None:
        if client not in self.clients or client.subscriptions.get(sub.topic) is not sub:
            return
        if postgres:
            sub.live = True
            await self._system(client, sub, "postgres_changes", "Subscribed to PostgreSQL", "ok")
        else:
            await self._system(client, sub, "system", "Replication connection established", "ok")

    async def _expire(self, client: Client, sub: Subscription, why: str) -> None:
        """What Realtime does when a channel's token runs out or is refused."""
        self.expired_closes += 1
        await self._close_channel(client, sub, why)

    async def _expire_tokens(self) -> None:
        now = time.time()
        for client in list(self.clients):
            for sub in list(client.subscriptions.values()):
                try:
                    claims = self.keys.claims(sub.token, verify_exp=False)
                except Refused:
                    continue
                if float(claims.get("exp", now + 1)) <= now:
                    await self._expire(client, sub, "Token has expired 0 seconds ago")

    # -- the database feeds ---------------------------------------------------------

    async def _poller(self) -> None:
        """postgres_changes: bridge.outbox INSERTs, if it is in the publication."""
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                await self._expire_tokens()
                published = await conn.fetchval(
                    "select exists (select 1 from pg_publication_tables where pubname ="
                    " 'supabase_realtime' and schemaname = 'bridge' and tablename = 'outbox')"
                )
                fetched = await conn.fetch(
                    "select id, topic, conversation_id::text, created_at from bridge.outbox"
                    " where id > $1 order by id",
                    self._outbox.low,
                )
                rows = [r for r in fetched if r["id"] not in self._outbox.seen][:MAX_CHANGES]
                self._outbox.saw([r["id"] for r in (rows if published else fetched)])
                if not published or not rows:
                    await asyncio.sleep(self.idle_poll)
                    continue
                # The limit is looked at once per poll: a triggered one skips the batch.
                if not self.rate.open():
                    self.rate.dropped += len(rows)
                    self.lost += len(rows)
                    continue
                for row in rows:
                    await self._publish_change(row)
        finally:
            await conn.close()

    async def _publish_change(self, row: asyncpg.Record) -> None:
        sent = False
        for client, sub in self._listeners():
            ids = [
                b["id"]
                for b in sub.bindings
                if b.get("schema") == "bridge"
                and b.get("table") == "outbox"
                and b.get("event") in ("INSERT", "*")
            ]
            if not sub.live or not ids or not self.rate.admit():
                continue
            data = outbox_insert(row)
            await self._send(
                client, sub.topic, "postgres_changes", {"data": data, "ids": ids}, None
            )
            sent = True
        self.delivered += sent
        self.lost += not sent

    def _listeners(self) -> list[tuple[Client, Subscription]]:
        return [(c, s) for c in list(self.clients) for s in c.subscriptions.values() if not s.deaf]

    async def _stream(self) -> None:
        """Broadcast from Database: realtime.messages rows, in insert order."""
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                fetched = await conn.fetch(
                    "select standin_seq, id, topic, event, payload, private from realtime.messages"
                    " where standin_seq > $1 and extension = 'broadcast' order by standin_seq",
                    self._messages.low,
                )
                rows = [r for r in fetched if r["standin_seq"] not in self._messages.seen]
                self._messages.saw([r["standin_seq"] for r in rows])
                for row in rows:
                    if row["payload"] is None:
                        continue  # an authorization probe that committed (none should)
                    if not self.rate.admit():
                        self.lost += 1
                        continue
                    await self._broadcast(row)
                await asyncio.sleep(STREAM_EVERY)
        finally:
            await conn.close()

    async def _broadcast(self, row: asyncpg.Record) -> None:
        topic = f"realtime:{row['topic']}"
        payload = json.loads(row["payload"])
        sent = False
        for client, sub in self._listeners():
            if sub.topic != topic or sub.private != bool(row["private"]):
                continue
            await self._send(
                client,
                topic,
                "broadcast",
                {
                    "type": "broadcast",
                    "event": row["event"],
                    "payload": payload,
                    "meta": {"id": str(row["id"])},
                },
                None,
            )
            sent = True
        self.delivered += sent
        self.lost += not sent

"""Who is online over several bridge instances, kept in Redis (used when
REDIS_URL is set; a single instance uses bridge.presence.memory). Only this
module imports redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.asyncio as aioredis

from bridge.presence import GoneCallback
from bridge.presence.state import Presence
from bridge.redis_client import redis_client
from bridge.tasks import stop_tasks

log = logging.getLogger(__name__)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


CALL_TIMEOUT = 1.0  # seconds a presence call waits for Redis


class RedisRegistry:
    """Who is online over several bridge instances, in Redis.

    `bridge:presence:<user>` is a hash of instance id -> that instance's
    connection count for the user; an instance's entries count only while
    its heartbeat key `bridge:instance:<id>` lives, so a crashed instance's
    users drop off by themselves. `bridge:away:<user>` marks the grace period
    after the last connection anywhere went: a reconnect on any instance
    deletes it (no flapping); the instance that set it announces "offline"
    if it is still its own mark when the grace ends.
    """

    INSTANCES = "bridge:instances"

    def __init__(self, presence: Presence, redis_url: str, *, instance_ttl: float = 20.0) -> None:
        self.presence = presence
        self.instance = uuid.uuid4().hex
        # A Redis that stops answering must not hold up a connect: presence
        # is best effort, a socket works without it.
        self.redis: aioredis.Redis = redis_client(
            redis_url, decode_responses=True, call_timeout=CALL_TIMEOUT
        )
        self._beat: asyncio.Task[None] | None = None
        # An instance whose heartbeat key is older than this is gone.
        self.instance_ttl_ms = int(instance_ttl * 1000)
        self.heartbeat = instance_ttl / 4
        # Called for each user who was only on an instance that died (the
        # gateway announces them offline to their partners).
        self.on_gone: GoneCallback | None = None

    def _key(self, user_id: str) -> str:
        return f"bridge:presence:{user_id}"

    def _users_key(self, instance: str) -> str:
        return f"bridge:instance-users:{instance}"

    async def start(self) -> None:
        await self._heartbeat_once()
        self._beat = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._beat is not None:
            await stop_tasks([self._beat])
        with contextlib.suppress(Exception):
            await self.redis.delete(f"bridge:instance:{self.instance}")
            await self.redis.srem(self.INSTANCES, self.instance)
        await self.redis.aclose()

    async def _heartbeat_once(self) -> None:
        """Refreshes this instance's key; when it was gone (Redis restarted
        or was emptied, or it expired while Redis was out of reach), writes
        back everything this instance holds, so presence, statuses and
        "viewing" are right again within one heartbeat."""
        previous = await self.redis.set(
            f"bridge:instance:{self.instance}", "1", px=self.instance_ttl_ms, get=True
        )
        await self.redis.sadd(self.INSTANCES, self.instance)
        if previous is None:
            await self._reassert()

    async def _reassert(self) -> None:
        connections, statuses, views = self.presence.local_state()
        if not connections:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, count in connections.items():
                pipe.hset(self._key(user), self.instance, count)
                pipe.sadd(self._users_key(self.instance), user)
            for user, status in statuses.items():
                pipe.set(f"bridge:status:{user}", status, px=86_400_000)
            for (user, conversation_id), count in views.items():
                pipe.hset(f"bridge:viewing:{user}", f"{conversation_id}|{self.instance}", count)
            await pipe.execute()
        log.info("presence written back to Redis", extra={"users": len(connections)})

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._heartbeat_once()
                await self._sweep_dead_instances()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: one line, and try again
                log.warning("presence heartbeat failed", extra={"error": repr(exc)})

    async def _sweep_dead_instances(self) -> None:
        """An instance that died without saying goodbye (kill -9, lost host)
        left its users online in Redis. Once its heartbeat key has expired,
        one survivor (whoever claims it first) takes its entries out and
        hands each user who is connected nowhere else to `on_gone`."""
        members = await self.redis.smembers(self.INSTANCES)
        others = [_text(i) for i in members if _text(i) != self.instance]
        if not others:
            return
        alive = await self.redis.mget([f"bridge:instance:{i}" for i in others])
        for dead in (i for i, beat in zip(others, alive, strict=True) if beat is None):
            claimed = await self.redis.set(
                f"bridge:reaping:{dead}", self.instance, nx=True, px=self.instance_ttl_ms
            )
            if not claimed:
                continue
            users = [_text(u) for u in await self.redis.smembers(self._users_key(dead))]
            for user in users:
                await self.redis.hdel(self._key(user), dead)
                viewing = [_text(f) for f in await self.redis.hkeys(f"bridge:viewing:{user}")]
                stale = [f for f in viewing if f.endswith(f"|{dead}")]
                if stale:
                    await self.redis.hdel(f"bridge:viewing:{user}", *stale)
                gone = not self.presence.connections(user)
                if gone and not await self._connections_elsewhere(user):
                    await self.redis.delete(f"bridge:status:{user}")
                    if self.on_gone is not None:
                        await self.on_gone(user)
            await self.redis.delete(self._users_key(dead))
            await self.redis.srem(self.INSTANCES, dead)
            log.warning(
                "instance gone; its users announced offline",
                extra={"instance": dead, "users": len(users)},
            )

    async def _connections_elsewhere(self, user_id: str) -> int:
        raw = await self.redis.hgetall(self._key(user_id))
        counts = {_text(k): _text(v) for k, v in raw.items()}
        others = [i for i, n in counts.items() if i != self.instance and int(n) > 0]
        if not others:
            return 0
        alive = await self.redis.mget([f"bridge:instance:{i}" for i in others])
        return sum(int(counts[i]) for i, a in zip(others, alive, strict=True) if a)

    async def connect(self, user_id: str, sid: str) -> bool:
        self.presence.connect(user_id, sid)
        local = self.presence.connections(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(user_id), self.instance, local)
            pipe.delete(f"bridge:away:{user_id}")
            pipe.sadd(self._users_key(self.instance), user_id)
            _, was_away, _ = await pipe.execute()
        if local > 1 or was_away:
            return False
        return await self._connections_elsewhere(user_id) == 0

    async def disconnect(self, user_id: str, sid: str, now: float) -> str | None:
        self.presence.disconnect(user_id, sid, now)
        local = self.presence.connections(user_id)
        if local:
            await self.redis.hset(self._key(user_id), self.instance, local)
            return None
        await self.redis.hdel(self._key(user_id), self.instance)
        await self.redis.srem(self._users_key(self.instance), user_id)
        if await self._connections_elsewhere(user_id):
            return None
        token = uuid.uuid4().hex
        grace_ms = int(self.presence.grace * 1000) + 5000
        await self.redis.set(f"bridge:away:{user_id}", token, px=grace_ms)
        return token

    async def went_offline(self, user_id: str, token: str, now: float) -> bool:
        self.presence.went_offline(user_id, now)
        key = f"bridge:away:{user_id}"
        mark = await self.redis.get(key)
        if mark is None or _text(mark) != token:
            return False  # back somewhere within the grace period
        if self.presence.connections(user_id) or await self._connections_elsewhere(user_id):
            return False
        await self.redis.delete(key)
        await self.redis.delete(f"bridge:status:{user_id}")
        return True

    async def set_status(self, user_id: str, status: str) -> bool:
        if not self.presence.set_status(user_id, status):
            return False
        await self.redis.set(f"bridge:status:{user_id}", status, px=86_400_000)
        return True

    async def statuses(self, user_ids: list[str]) -> dict[str, str]:
        result = {}
        for user in user_ids:
            online = (
                self.presence.connections(user) > 0
                or await self._connections_elsewhere(user) > 0
                or bool(await self.redis.exists(f"bridge:away:{user}"))
            )
            chosen = await self.redis.get(f"bridge:status:{user}") if online else None
            result[user] = (_text(chosen) if chosen else "online") if online else "offline"
        return result

    # -- viewing ------------------------------------------------------------------

    async def _publish_views(self, user_id: str, conversation_id: str) -> None:
        count = self.presence.viewers(user_id, conversation_id)
        field = f"{conversation_id}|{self.instance}"
        if count:
            await self.redis.hset(f"bridge:viewing:{user_id}", field, count)
        else:
            await self.redis.hdel(f"bridge:viewing:{user_id}", field)

    async def set_viewing(self, user_id: str, sid: str, conversation_id: str, on: bool) -> None:
        self.presence.view(sid, conversation_id, on)
        await self._publish_views(user_id, conversation_id)

    async def drop_views(self, user_id: str, sid: str) -> None:
        for conversation_id in self.presence.drop_views(sid):
            await self._publish_views(user_id, conversation_id)

    async def is_viewing(self, user_id: str, conversation_id: str) -> bool:
        status = (await self.statuses([user_id]))[user_id]
        if status != "online":
            return False
        if self.presence.viewers(user_id, conversation_id):
            return True
        raw = await self.redis.hgetall(f"bridge:viewing:{user_id}")
        instances = [
            _text(k).split("|", 1)[1]
            for k, v in raw.items()
            if _text(k).startswith(f"{conversation_id}|") and int(_text(v)) > 0
        ]
        if not instances:
            return False
        alive = await self.redis.mget([f"bridge:instance:{i}" for i in instances])
        return any(alive)

    async def connection_count(self, user_id: str) -> int:
        """Over all live instances; this instance's alone while Redis is away
        (the cap then holds per instance rather than refusing everyone)."""
        local = self.presence.connections(user_id)
        try:
            return local + await self._connections_elsewhere(user_id)
        except Exception as exc:
            log.warning("connection count without Redis", extra={"error": repr(exc)})
            return local

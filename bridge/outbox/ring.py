"""Rings between instances over Redis pub/sub: best effort, they carry
nothing but "look at the outbox". Only this module of the outbox imports redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from bridge.redis_client import redis_client

log = logging.getLogger(__name__)

RING_CHANNEL = "bridge:outbox-ring"
MAX_BACKOFF = 5.0


class RedisRing:
    """Wakes every instance's tail when any instance saw the outbox move.
    Best effort by design: a lost ring only means the next poll."""

    def __init__(self, redis_url: str, on_ring: Callable[[], None]) -> None:
        self.redis: aioredis.Redis = redis_client(redis_url)
        self.on_ring = on_ring
        self._pending: asyncio.Task[Any] | None = None

    def publish(self) -> None:
        """Fire and forget; at most one publish in flight (they carry nothing)."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._publish())

    async def _publish(self) -> None:
        with contextlib.suppress(Exception):
            await self.redis.publish(RING_CHANNEL, b"")

    async def run(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(RING_CHANNEL)
                self.on_ring()  # rings may have been missed meanwhile
                backoff = 0.2
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.on_ring()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox ring from Redis lost", extra={"error": repr(exc)})
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
        await self.redis.aclose()

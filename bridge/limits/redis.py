"""Users' token buckets in Redis, shared by every instance: one small Lua
script takes a token atomically, timed by the Redis server's clock (so the
instances' clocks do not matter). Only this module of bridge/limits imports
redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from bridge.limits import Rule
from bridge.redis_client import redis_client

# KEYS[1]: the bucket; ARGV: rate per second, burst. Returns the seconds to
# wait as a string ("0" when a token was taken): Redis would truncate a
# Lua number to an integer.
TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(saved[1])
local stamp = tonumber(saved[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""
# A rate check must not hold a request up for long when Redis is slow or away.
TIMEOUT = 0.25


class RedisBuckets:
    def __init__(self, redis_url: str) -> None:
        self.redis: aioredis.Redis = redis_client(
            redis_url, decode_responses=True, call_timeout=TIMEOUT
        )
        self._take = self.redis.register_script(TAKE)

    async def take(self, key: str, rule: Rule) -> float:
        wait = await self._take(keys=[f"bridge:rate:{key}"], args=[rule.rate, rule.burst])
        return float(wait)

    async def close(self) -> None:
        await self.redis.aclose()

"""Rate limits: token buckets per user and per socket for each kind of
client request (sending, typing, reads, joins, everything else).

A request takes one token from its socket's bucket (local: a socket lives
on one instance, and a flooding socket is refused here without any I/O) and
then one from its user's bucket, which all of the user's sockets and REST
calls share: in Redis when `REDIS_URL` is set (`bridge.limits.redis`, so the
limit holds over instances), else in this process. While Redis cannot be
reached the user's bucket falls back to this process's (per-instance
limits, one warning each way) rather than refusing everyone.

Over a limit the request is refused with `RateLimited` (`rate_limited`,
`retry_after`) before anything is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import socketio

from bridge.errors import RateLimited
from bridge.metrics import Metrics
from bridge.presence import PresenceRegistry
from bridge.settings import LIMIT_KINDS, LimitsSettings

log = logging.getLogger(__name__)

KINDS = LIMIT_KINDS
# Client events by kind; events not named here are "other".
EVENT_KINDS: dict[str, str] = {
    "send_message": "send",
    "typing_start": "typing",
    "typing_stop": "typing",
    "mark_seen": "read",
    "join": "join",
    "join_global_updates": "join",
    "request_global_notifications": "join",
    "join_conversation": "join",
    "leave_conversation": "join",
    "join_bid": "join",
    "join_campaign": "join",
    "edit_message": "send",
    "unsend_message": "send",
    "message_delivered": "read",
    "attachment_upload": "send",  # a step of sending, and it costs storage
}
# After a Redis failure the shared buckets are not tried again for this long.
REDIS_RETRY = 1.0
PRUNE_EVERY = 30.0


@dataclass(frozen=True)
class Rule:
    """`rate` tokens per second, at most `burst` saved up; rate 0: no limit."""

    rate: float
    burst: int

    @property
    def idle_seconds(self) -> float:
        """How long until an empty bucket is full again (then it can go)."""
        return self.burst / self.rate if self.rate > 0 else 0.0


def rules_from(settings: LimitsSettings) -> dict[str, Rule]:
    return {
        kind: Rule(getattr(settings, f"{kind}_rate"), getattr(settings, f"{kind}_burst"))
        for kind in KINDS
    }


class Bucket:
    """One token bucket: full at first, refilled continuously."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, rule: Rule, now: float) -> None:
        self.tokens = float(rule.burst)
        self.stamp = now

    def take(self, rule: Rule, now: float) -> float:
        """Takes a token: 0.0 when there was one, else the seconds until
        there will be (and nothing is taken)."""
        self.tokens = min(float(rule.burst), self.tokens + (now - self.stamp) * rule.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rule.rate


class LocalBuckets:
    """Buckets in this process, by key; full ones are dropped by `prune`."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[Bucket, Rule]] = {}

    def take(self, key: str, rule: Rule, now: float) -> float:
        entry = self.buckets.get(key)
        if entry is None:
            entry = self.buckets[key] = (Bucket(rule, now), rule)
        return entry[0].take(rule, now)

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.buckets.pop(key, None)

    def prune(self, now: float) -> None:
        """Forgets buckets that have refilled: a fresh one is the same."""
        full = [
            key
            for key, (bucket, rule) in self.buckets.items()
            if now - bucket.stamp >= rule.idle_seconds
        ]
        for key in full:
            del self.buckets[key]


class SharedBuckets(Protocol):
    """Buckets every instance shares (bridge.limits.redis)."""

    async def take(self, key: str, rule: Rule) -> float: ...
    async def close(self) -> None: ...


class Limiter:
    def __init__(
        self,
        rules: Mapping[str, Rule],
        metrics: Metrics,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.rules = dict(rules)
        self.metrics = metrics
        self.shared = shared
        self.local = LocalBuckets()
        self._shared_down_until = 0.0  # monotonic; Redis is not asked before
        self._shared_down = False
        self._pruned = time.monotonic()

    async def check(self, user_id: str, kind: str, sid: str | None = None) -> None:
        """Takes a token for one request of `kind` by `user_id` (on socket
        `sid`, or over REST); raises RateLimited when there is none."""
        rule = self.rules[kind]
        if rule.rate <= 0:
            return
        now = time.monotonic()
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            self.local.prune(now)
        if sid is not None:
            wait = self.local.take(f"s:{sid}:{kind}", rule, now)
            if wait:
                self._refuse(kind, wait)
        wait = await self._take_user(f"{user_id}:{kind}", rule, now)
        if wait:
            self._refuse(kind, wait)

    def _refuse(self, kind: str, wait: float) -> None:
        self.metrics.inc("rate_limited")
        raise RateLimited(kind, wait)

    async def _take_user(self, key: str, rule: Rule, now: float) -> float:
        if self.shared is not None and now >= self._shared_down_until:
            try:
                wait = await self.shared.take(key, rule)
            except Exception as exc:  # Redis away: per-instance limits meanwhile
                self._shared_down_until = now + REDIS_RETRY
                self.metrics.inc("rate_limit_fallbacks")
                if not self._shared_down:
                    self._shared_down = True
                    log.warning(
                        "rate limits per instance: Redis cannot be reached",
                        extra={"error": repr(exc)},
                    )
            else:
                if self._shared_down:
                    self._shared_down = False
                    log.info("rate limits shared over instances again")
                return wait
        return self.local.take(f"u:{key}", rule, now)

    def forget_socket(self, sid: str) -> None:
        self.local.drop(f"s:{sid}:{kind}" for kind in KINDS)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()


async def connection_cap(
    registry: PresenceRegistry, metrics: Metrics, user_id: str, cap: int
) -> None:
    """Refuses a new socket when the user already has `cap` (over all
    instances; 0: no cap). The new one, not the oldest: sockets already
    working are never cut off for a newcomer, and a leaked one goes at its
    ping timeout. The count is read, not reserved: two connects at the same
    moment may both pass."""
    if cap and await registry.connection_count(user_id) >= cap:
        metrics.inc("connects_over_cap")
        message = f"too many connections for this user (at most {cap}); close one first"
        raise socketio.exceptions.ConnectionRefusedError(
            message, {"code": "too_many_connections", "message": message}
        )


def open_limiter(settings: LimitsSettings, metrics: Metrics, redis_url: str) -> Limiter:
    """Shared buckets in Redis when `redis_url` is set (redis imported only then)."""
    shared: SharedBuckets | None = None
    if redis_url:
        from bridge.limits.redis import RedisBuckets

        shared = RedisBuckets(redis_url)
    return Limiter(rules_from(settings), metrics, shared)


__all__ = [
    "EVENT_KINDS",
    "KINDS",
    "Bucket",
    "Limiter",
    "LocalBuckets",
    "Rule",
    "connection_cap",
    "open_limiter",
]

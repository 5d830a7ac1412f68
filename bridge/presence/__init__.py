"""Who is online, who is viewing which conversation, and who is typing.

One interface (`PresenceRegistry`) with two backends, chosen by whether
`REDIS_URL` is set, as encode/broadcaster chooses its backends:

- `memory.LocalRegistry`: a single instance, where the local bookkeeping
  (`state.Presence`) is the whole truth;
- `redis.RedisRegistry`: several instances sharing Redis, healing itself
  after Redis loses its data and announcing a dead instance's users offline.

Redis is imported only when its backend is chosen. Presence is best effort:
nothing here is stored in Postgres except `last_seen_at`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bridge.presence.state import Presence

# Called with a user whose every connection was on an instance that died.
GoneCallback = Callable[[str], Awaitable[None]]


class PresenceRegistry(Protocol):
    presence: Presence
    on_gone: GoneCallback | None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def connect(self, user_id: str, sid: str) -> bool:
        """True when partners should hear "online"."""
        ...

    async def disconnect(self, user_id: str, sid: str, now: float) -> str | None:
        """A token when the user's last connection went (check it after the grace)."""
        ...

    async def went_offline(self, user_id: str, token: str, now: float) -> bool: ...
    async def set_status(self, user_id: str, status: str) -> bool: ...
    async def statuses(self, user_ids: list[str]) -> dict[str, str]: ...
    async def set_viewing(self, user_id: str, sid: str, conversation_id: str, on: bool) -> None: ...
    async def drop_views(self, user_id: str, sid: str) -> None: ...
    async def is_viewing(self, user_id: str, conversation_id: str) -> bool: ...
    async def connection_count(self, user_id: str) -> int:
        """The user's sockets over all instances."""
        ...


def open_registry(
    presence: Presence, redis_url: str | None, *, instance_ttl: float
) -> PresenceRegistry:
    """The Redis backend when `redis_url` is set, else the local one."""
    if redis_url:
        from bridge.presence.redis import RedisRegistry

        return RedisRegistry(presence, redis_url, instance_ttl=instance_ttl)
    from bridge.presence.memory import LocalRegistry

    return LocalRegistry(presence)


__all__ = ["GoneCallback", "Presence", "PresenceRegistry", "open_registry"]

"""Presence for a single bridge instance: the local bookkeeping is the
whole truth. Doubles as the registry tests run without Redis."""

from __future__ import annotations

from bridge.presence import GoneCallback
from bridge.presence.state import Presence


class LocalRegistry:
    """Who is online, for a single bridge instance: the local bookkeeping."""

    def __init__(self, presence: Presence) -> None:
        self.presence = presence
        self.on_gone: GoneCallback | None = None  # no other instance can die

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def connect(self, user_id: str, sid: str) -> bool:
        """True when partners should hear "online"."""
        return self.presence.connect(user_id, sid)

    async def disconnect(self, user_id: str, sid: str, now: float) -> str | None:
        """A token when the user's last connection went (check it after the grace)."""
        return "local" if self.presence.disconnect(user_id, sid, now) else None

    async def went_offline(self, user_id: str, token: str, now: float) -> bool:
        return self.presence.went_offline(user_id, now)

    async def set_status(self, user_id: str, status: str) -> bool:
        return self.presence.set_status(user_id, status)

    async def statuses(self, user_ids: list[str]) -> dict[str, str]:
        return {u: self.presence.status(u) for u in user_ids}

    async def set_viewing(self, user_id: str, sid: str, conversation_id: str, on: bool) -> None:
        self.presence.view(sid, conversation_id, on)

    async def drop_views(self, user_id: str, sid: str) -> None:
        self.presence.drop_views(sid)

    async def is_viewing(self, user_id: str, conversation_id: str) -> bool:
        return self.presence.is_viewing(user_id, conversation_id)

    async def connection_count(self, user_id: str) -> int:
        return self.presence.connections(user_id)

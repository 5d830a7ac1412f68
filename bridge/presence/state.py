"""Who is online and who is typing, as plain bookkeeping with the clock
passed in (timers live in the server). Nothing here is persisted: presence is
ephemeral, and `last_seen_at` in the database is the durable part."""

from __future__ import annotations

from dataclasses import dataclass, field

OFFLINE_GRACE = 3.0  # seconds a user may be away before partners hear "offline"
TYPING_TTL = 6.0  # a typing_start without typing_stop expires after this
TYPING_THROTTLE = 2.0  # repeated typing_start within this is not relayed again


@dataclass
class Presence:
    grace: float = OFFLINE_GRACE
    typing_ttl: float = TYPING_TTL
    typing_throttle: float = TYPING_THROTTLE
    _sids: dict[str, set[str]] = field(default_factory=dict)
    _status: dict[str, str] = field(default_factory=dict)
    _away_since: dict[str, float] = field(default_factory=dict)
    # (conversation, user) -> (relayed at, expires at)
    _typing: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    # sid -> conversations that socket has open (joined the room of)
    _views: dict[str, set[str]] = field(default_factory=dict)

    # -- connections ------------------------------------------------------------

    def connect(self, user_id: str, sid: str) -> bool:
        """Registers a connection; True when partners should hear "online"."""
        sids = self._sids.setdefault(user_id, set())
        first = not sids
        sids.add(sid)
        returning_in_grace = self._away_since.pop(user_id, None) is not None
        if first and not returning_in_grace:
            self._status[user_id] = "online"
            return True
        return False

    def disconnect(self, user_id: str, sid: str, now: float) -> bool:
        """Drops a connection; True when it was the user's last (then call
        `went_offline` after the grace period)."""
        sids = self._sids.get(user_id)
        if not sids:
            return False
        sids.discard(sid)
        if sids:
            return False
        del self._sids[user_id]
        self._away_since[user_id] = now
        return True

    def went_offline(self, user_id: str, now: float) -> bool:
        """True if the user is still gone after the grace period."""
        since = self._away_since.get(user_id)
        if since is None or now - since < self.grace - 1e-6:
            return False
        del self._away_since[user_id]
        self._status.pop(user_id, None)
        return True

    def set_status(self, user_id: str, status: str) -> bool:
        """A user's own status choice (online / away); True if it changed."""
        if user_id not in self._sids:
            return False
        changed = self._status.get(user_id) != status
        self._status[user_id] = status
        return changed

    def status(self, user_id: str) -> str:
        if user_id in self._sids or user_id in self._away_since:
            return self._status.get(user_id, "online")
        return "offline"

    def sids_of(self, user_id: str) -> list[str]:
        return sorted(self._sids.get(user_id, ()))

    def connections(self, user_id: str) -> int:
        return len(self._sids.get(user_id, ()))

    # -- viewing (no push about a conversation its reader has open) --------------

    def view(self, sid: str, conversation_id: str, on: bool) -> None:
        views = self._views.setdefault(sid, set())
        if on:
            views.add(conversation_id)
        else:
            views.discard(conversation_id)

    def drop_views(self, sid: str) -> set[str]:
        return self._views.pop(sid, set())

    def viewers(self, user_id: str, conversation_id: str) -> int:
        """How many of the user's sockets here have the conversation open."""
        return sum(
            conversation_id in self._views.get(sid, ()) for sid in self._sids.get(user_id, ())
        )

    def local_state(self) -> tuple[dict[str, int], dict[str, str], dict[tuple[str, str], int]]:
        """Everything this process knows: connections per user, chosen
        statuses, and open conversations per (user, conversation)."""
        connections = {user: len(sids) for user, sids in self._sids.items() if sids}
        views: dict[tuple[str, str], int] = {}
        for user, sids in self._sids.items():
            for sid in sids:
                for conversation_id in self._views.get(sid, ()):
                    views[(user, conversation_id)] = views.get((user, conversation_id), 0) + 1
        statuses = {user: status for user, status in self._status.items() if user in connections}
        return connections, statuses, views

    def is_viewing(self, user_id: str, conversation_id: str) -> bool:
        """Open on a device and the app not in the background ("away")."""
        return self.viewers(user_id, conversation_id) > 0 and self.status(user_id) == "online"

    # -- typing -----------------------------------------------------------------

    def typing_start(self, conversation_id: str, user_id: str, now: float) -> bool:
        """True when the start should be relayed (first, or throttle passed)."""
        key = (conversation_id, user_id)
        relayed_at, _ = self._typing.get(key, (None, None))
        relay = relayed_at is None or now - relayed_at >= self.typing_throttle
        self._typing[key] = (
            now if relay or relayed_at is None else relayed_at,
            now + self.typing_ttl,
        )
        return relay

    def typing_stop(self, conversation_id: str, user_id: str) -> bool:
        """True when the user was typing (a stop should be relayed)."""
        return self._typing.pop((conversation_id, user_id), None) is not None

    def expired_typing(self, now: float) -> list[tuple[str, str]]:
        gone = [key for key, (_, expires) in self._typing.items() if expires <= now]
        for key in gone:
            del self._typing[key]
        return gone

    def typing_of(self, user_id: str) -> list[str]:
        """Conversations the user is typing in (cleared when they leave)."""
        convs = [conv for (conv, user) in self._typing if user == user_id]
        for conv in convs:
            del self._typing[(conv, user_id)]
        return convs

"""What a reconnecting socket missed: the outbox rows after the last
`event_id` it saw, translated again and emitted to that socket only, for
the rooms it is in now."""

from __future__ import annotations

from typing import Any

import socketio

from bridge.outbox.store import to_change
from bridge.store import Store
from bridge.translate import TranslationError, translate

MAX_REPLAY = 1000  # more missed changes than this: the client resyncs over REST


async def replay_missed(
    store: Store,
    sio: socketio.AsyncServer,
    sid: str,
    user_id: str,
    last_event_id: int,
    storage_public_base: str,
) -> dict[str, Any]:
    """Emits to `sid` what it missed since `last_event_id`, in order, and
    returns the `sync` ack; `resync: true` when the gap is too far back."""
    rows, complete = await store.missed_changes(user_id, last_event_id, MAX_REPLAY)
    if not complete:
        latest = await store.latest_change_id()
        return {"ok": True, "resync": True, "replayed": 0, "lastEventId": latest}
    rooms = set(sio.rooms(sid))
    replayed = 0
    for row in rows:
        try:
            result = translate(to_change(row), storage_public_base)
        except TranslationError:
            continue
        for emit in result.emits:
            if rooms.intersection(emit.rooms):
                await sio.emit(emit.event, emit.payload, to=sid)
                replayed += 1
    last = int(rows[-1]["id"]) if rows else max(last_event_id, 0)
    return {"ok": True, "resync": False, "replayed": replayed, "lastEventId": last}

"""What a reconnecting socket missed: the outbox rows after the last
`event_id` it saw, translated again and emitted to that socket only, for
the rooms it is in now."""

from __future__ import annotations

from dataclasses import replace
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
    # Messages unsent later in the gap are replayed as their tombstones: an
    # unsent text never reaches a device that had not seen it.
    changes = [to_change(row) for row in rows]
    tombstones = {
        str(c.payload["message"]["id"]): c.payload["message"]
        for c in changes
        if c.topic == "message.deleted" and isinstance(c.payload.get("message"), dict)
    }
    fetched: list[dict[str, Any]] = []
    for change in changes:
        try:
            message = change.payload.get("message")
            if tombstones and isinstance(message, dict) and str(message["id"]) in tombstones:
                change = replace(
                    change, payload={**change.payload, "message": tombstones[str(message["id"])]}
                )
            result = translate(change, storage_public_base)
        except (TranslationError, KeyError, TypeError):
            continue
        for emit in result.emits:
            if rooms.intersection(emit.rooms):
                await sio.emit(emit.event, emit.payload, to=sid)
                replayed += 1
                if emit.event == "new_message":
                    fetched.append(emit.payload["message"])
    # The receiver's device has what was replayed to it: delivery receipts.
    await store.delivered_by_sync(user_id, fetched)
    last = int(rows[-1]["id"]) if rows else max(last_event_id, 0)
    return {"ok": True, "resync": False, "replayed": replayed, "lastEventId": last}

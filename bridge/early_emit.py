"""Emitting a send's changes right after its commit, before the relay reads
them back (single instance: the relay is the one emitting).

The send statement (bridge.send_messages_changes) returns the outbox rows
it wrote, per conversation, with the id of the conversation's previous
outbox row. They go out at once only if that previous row is the last one
that went out for the conversation from here (from the relay or from here);
otherwise (a change from supabase-js not relayed yet, a writer whose commit
answer came back before an earlier one's, a conversation this process has
not emitted anything for since it started) they are left to the relay, which
delivers them in outbox order. The relay skips rows emitted here and still
writes their push jobs and moves its cursor past them, so delivery stays
at-least-once (a crash before the cursor moved only repeats them).

All emits of the relay and of this path take one lock, so the check "the
previous row went out" and the emits it allows cannot interleave with the
relay's emits for the same conversation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from bridge.metrics import Metrics
from bridge.outbox.delivery import Emit, emit_change

log = logging.getLogger(__name__)

# Bounds on what is remembered; forgetting only sends more through the relay
# (or, for `emitted`, repeats a change the client drops by its event_id).
MAX_CONVERSATIONS = 100_000
MAX_EMITTED = 100_000
# Outbox ids the relay emitted itself, the latest this many: a send the relay
# read before its emit at commit (forgetting only sends it to the relay).
MAX_RELAYED = 4096


class EarlyEmits:
    def __init__(self, emit: Emit, storage_public_base: str, metrics: Metrics) -> None:
        self.emit = emit
        self.storage_public_base = storage_public_base
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.enabled = True  # off while this instance is not the one relaying
        # The relay writes push jobs (FCM configured): a change with push
        # intents still needs the relay's read to be written.
        self.pushes_owed = False
        self._last: dict[str, int] = {}  # conversation -> last outbox id gone out
        self._emitted: set[int] = set()  # outbox ids emitted here, not yet passed by the relay
        self._relayed: dict[int, None] = {}  # outbox ids the relay emitted, oldest first

    def reset(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last.clear()
        self._emitted.clear()
        self._relayed.clear()

    async def committed(self, groups: Sequence[dict[str, Any]]) -> bool:
        """A send's changes, just committed: emits what may go out now.
        Returns whether they all went out and owe the relay nothing but its
        cursor move (no push job to write when `pushes_owed`): then the relay
        may gather them with other sends' (bridge/outbox/relay.py, GATHER)."""
        if not self.enabled:
            return False
        settled = True
        for group in groups:
            conversation_id, prev = str(group["conversation_id"]), group["prev"]
            async with self.lock:
                last = self._last.get(conversation_id)
                if group["rows"] and int(group["rows"][-1]["id"]) in self._relayed:
                    # The relay read them between the commit and now and has
                    # emitted them (their push jobs go with its page): sooner
                    # than here. (Its last row relayed: all were, in id order.)
                    self.metrics.inc("early_emits_overtaken", len(group["rows"]))
                    continue
                if prev is None or last != prev:
                    self.metrics.inc("early_emits_left_to_relay")
                    settled = False
                    continue
                for row in group["rows"]:
                    delivered = await emit_change(
                        row, self.emit, self.storage_public_base, self.metrics, conversation_id
                    )
                    if delivered is None:
                        settled = False
                        break  # the relay logs it; what follows goes through the relay
                    change, result = delivered
                    self._remember(conversation_id, change.id)
                    if len(self._emitted) >= MAX_EMITTED:
                        self._emitted.clear()
                    self._emitted.add(change.id)
                    self.metrics.inc("early_emits")
                    if result.pushes and self.pushes_owed:
                        settled = False
        return settled

    def passed(self, change_id: int, conversation_id: str | None) -> bool:
        """The relay reached a row (call with `lock` held): True when it was
        emitted here already; either way it counts as gone out."""
        if conversation_id is not None:
            self._remember(conversation_id, change_id)
        if change_id in self._emitted:
            self._emitted.discard(change_id)
            return True
        if len(self._relayed) >= MAX_RELAYED:
            del self._relayed[next(iter(self._relayed))]
        self._relayed[change_id] = None
        return False

    def _remember(self, conversation_id: str, change_id: int) -> None:
        """Only forward: the relay passes a page's rows one at a time (the
        lock taken per row), so it may pass a row after a later one of the
        same conversation went out here; that must not make the later one's
        successor wait for the relay."""
        if len(self._last) >= MAX_CONVERSATIONS and conversation_id not in self._last:
            self._last.clear()
        if change_id > self._last.get(conversation_id, 0):
            self._last[conversation_id] = change_id

"""Which push intents become push jobs: the policy between the relay's
translation and the push queue. Runs inside the relay's batch transaction,
so a job commits with the cursor that passed its change."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.db import Connection
from bridge.metrics import Metrics
from bridge.outbox.relay import PushSink
from bridge.presence import PresenceRegistry
from bridge.push.queue import PushQueue
from bridge.translate import Change, PushIntent


def push_intake(registry: PresenceRegistry, metrics: Metrics, cooldown: float) -> PushSink:
    """No push to someone looking at the conversation, nor one that is
    blocked, muted or in quiet hours (bridge.push_silenced). A retraction
    goes anyway: a push shown earlier, with text since unsent, must be
    replaced whatever the person's state is now."""

    async def enqueue(conn: Connection, change: Change, intents: Sequence[PushIntent]) -> None:
        for intent in intents:
            if intent.kind != "retract":
                if await registry.is_viewing(intent.user_id, intent.conversation_id):
                    metrics.inc("pushes_suppressed")
                    continue
                if await conn.fetchval(
                    "select bridge.push_silenced($1, $2)", intent.user_id, intent.conversation_id
                ):
                    metrics.inc("pushes_silenced")
                    continue
            await PushQueue.enqueue(conn, intent, change.id, cooldown)
            metrics.inc("pushes_queued")

    return enqueue

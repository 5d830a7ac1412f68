"""How long relayed changes stay in the outbox: kept `outbox.retention_hours`
for `sync` (bridge/outbox/replay.py), then pruned, every PRUNE_EVERY seconds."""

from __future__ import annotations

import asyncio
import logging

from bridge.db_health import DatabaseHealth
from bridge.store import Store

log = logging.getLogger(__name__)

PRUNE_EVERY = 600.0


async def keep_pruning(
    store: Store, retention_hours: float, health: DatabaseHealth, every: float = PRUNE_EVERY
) -> None:
    """Prunes relayed changes older than `retention_hours`, until cancelled;
    a failed round is logged and the next one tries again."""
    while True:
        await asyncio.sleep(every)
        try:
            pruned = await store.prune_outbox(retention_hours)
            if pruned:
                log.info("outbox pruned", extra={"rows": pruned})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            health.log_failure(exc, "outbox prune failed")

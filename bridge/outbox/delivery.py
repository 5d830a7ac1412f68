"""One outbox change out to the sockets: read as a Change, translated, its
events emitted, its latency recorded. The relay, each instance's tail and
the emit at commit (bridge/early_emit.py) all send a change through
`emit_change`; it is their per-change path, so it stays one plain call."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from bridge.metrics import Metrics
from bridge.outbox.store import to_change
from bridge.translate import Change, Translation, TranslationError, translate

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], Sequence[str]], Awaitable[None]]


async def emit_change(
    row: asyncpg.Record | Mapping[str, Any],
    emit: Emit | None,
    storage_public_base: str,
    metrics: Metrics,
    conversation_id: str | None = None,
    *,
    by_relay: bool = False,
) -> tuple[Change, Translation] | None:
    """Translates an outbox row and emits its events with `emit` (None:
    only translates it, for its push intents); returns the change and its
    translation, or None when it cannot be translated. `conversation_id`:
    see `to_change`. `by_relay`: the relay's call, which counts its emits
    and logs and counts an untranslatable row (every row passes the relay;
    the others leave that to it)."""
    try:
        change = to_change(row, conversation_id)
        result = translate(change, storage_public_base)
    except (TranslationError, ValueError, TypeError) as exc:
        if by_relay:
            metrics.inc("changes_untranslatable")
            log.error(
                "untranslatable outbox row skipped", extra={"id": row["id"], "error": str(exc)}
            )
        return None
    if emit is not None:
        for out in result.emits:
            await emit(out.event, out.payload, out.rooms)
        if by_relay and result.emits:
            metrics.inc("emits_out", len(result.emits))
        metrics.delivered(time.time() - row["created_at"].timestamp())
    return change, result

"""Reading the rows of bridge.send_messages_changes, the single instance's
send statement: first each item's result, then the outbox rows the
statement wrote, in id order. A new message's result is its id: its row
comes back once, inside its message.created change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg


class SentChanges:
    def __init__(self, rows: Sequence[asyncpg.Record]) -> None:
        self._results: list[dict[str, Any]] = []
        self._created: dict[str, dict[str, Any]] = {}
        groups: dict[Any, dict[str, Any]] = {}
        for row in rows:
            if row["result"] is not None:
                self._results.append(row["result"])
                continue
            group = groups.get(row["conversation_id"])
            if group is None:
                group = groups[row["conversation_id"]] = {
                    "conversation_id": row["conversation_id"],
                    "prev": row["prev"],
                    "rows": [],
                }
            group["rows"].append(row)  # a change row: what bridge.outbox.store.to_change reads
            if row["topic"] == "message.created":
                message = row["payload"]["message"]
                self._created[str(message["id"])] = message
        # Per conversation ({conversation_id, prev, rows}), rows in id order:
        # what bridge/early_emit.py emits.
        self.groups: list[dict[str, Any]] = list(groups.values())

    def results(self) -> list[dict[str, Any]]:
        """Each send's {message, created}, in the order they were given."""
        out = []
        for result in self._results:
            if result.get("created"):
                message = self._created.get(str(result["id"]))
                if message is None:
                    raise RuntimeError("a new message came back without its change")
                result = {"message": message, "created": True}
            out.append(result)
        return out

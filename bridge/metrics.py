"""Counters of what the bridge did, shown on /healthz."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def inc(self, name: str, by: int = 1) -> None:
        self.counts[name] += by

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

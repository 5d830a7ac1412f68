"""Garbage-collector settings and watch for a process with thousands of
sockets."""

from __future__ import annotations

import logging
import time

from bridge.metrics import Metrics

log = logging.getLogger(__name__)

# CPython's default (700, 10, 10) promotes short-lived event payloads into the
# old generation at thousands of emits a second, so a full collection over
# every socket's objects (~0.4 s with 5,000 sockets) came every ~15 s and
# stalled all deliveries. Rarer young collections let those payloads die by
# reference counting first (bench/socket_latency.py: p99 390 ms -> 12 ms).
GC_THRESHOLDS = (50_000, 20, 100)


class GcWatch:
    """Counts garbage-collector pauses and logs the long ones: with thousands
    of sockets a full collection can stall every delivery at once."""

    SLOW = 0.05

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took >= self.SLOW:
            self.metrics.inc("gc_slow_pauses")
            log.warning(
                "slow garbage collection",
                extra={"generation": info.get("generation"), "ms": round(took * 1000)},
            )

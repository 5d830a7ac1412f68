"""What the bridge did, counted once for both /healthz and /metrics.

`Metrics.counts` holds the flat counters /healthz shows (`inc`); the same
object owns the app's own Prometheus registry (never the process-wide
default one, so several daemons in one process, as in the tests, keep
their figures apart). Every flat counter is exported there too, as
`bridge_<name>_total`; the labelled families below break some of them down
(by event, by reason). Call sites use the methods here, so each thing is
counted in one place. What is read at scrape time rather than counted
(sockets, outbox lag, pool, doorbell, Redis) is in bridge/metrics_http.py.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

# `*_created` series double the output and nobody here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "bridge"
# Commit (the writing transaction's start, outbox.created_at) to emit.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Client events that never reached a handler (unknown, reserved, malformed).
OTHER_EVENT = "(other)"

# Help texts of the flat counters; others get a generic one.
COUNTER_HELP = {
    "connects": "Socket.IO connections accepted",
    "connects_refused": "Socket.IO connections refused (any reason)",
    "events_in": "client events handled (any result)",
    "event_errors": "client events that failed with an internal error",
    "changes_in": "outbox changes read by the relay",
    "changes_untranslatable": "outbox changes skipped as untranslatable",
    "emits_out": "emits of the relay (single instance)",
    "relay_errors": "failed relay turns",
    "relay_standby_waits": "relay turns spent waiting for the lease",
    "doorbell_unsealed": "doorbell armings that found a writer still open (the relay polls)",
    "presence_errors": "presence updates that failed (Redis away or saturated)",
    "relay_cursor_moved": "relay pages whose cursor was moved by someone else (skip_pending)",
    "database_unavailable": "requests and turns that found the database unreachable",
    "rest_errors": "REST requests that failed with an internal error",
    "permission_errors": "permission denied on a path RLS allows (a missing grant)",
    "slow_sockets_dropped": "sockets cut off for not reading",
    "pushes_queued": "push jobs written",
    "pushes_suppressed": "pushes not written: the person has the conversation open",
    "pushes_sent": "pushes FCM accepted (per device)",
    "pushes_failed": "push jobs that reached no device",
    "pushes_no_tokens": "push jobs for people without an active token",
    "push_retries": "push attempts retried after a transient FCM error",
    "push_leases_lost": "push jobs taken over by another instance",
    "tokens_deactivated": "FCM tokens switched off (unregistered, invalid, sender mismatch)",
    "gc_slow_pauses": "garbage collections that paused the loop for long",
    "early_emits": "changes of a send emitted right at its commit",
    "early_emits_left_to_relay": "sends left to the relay (an earlier change not out yet)",
    "early_emits_overtaken": "sends the relay emitted before their commit's own emit",
    "relay_gathers": "relay waits that gathered sends already emitted at their commit",
}


class _FlatCounters:
    """Exports the /healthz counters as Prometheus counters."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        for name, value in sorted(self.counts.items()):
            help_text = COUNTER_HELP.get(name, f"{name} (as on /healthz)")
            yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=value)


class _HotPathFamilies:
    """The two families moved for every emit and every change delivered,
    thousands of times a second: kept as plain counts (a dict entry, a list
    slot found by bisect) and turned into Prometheus families at scrape
    time. prometheus_client's own Counter and Histogram take a lock per
    call and walk the buckets in Python: a few percent of the daemon's CPU
    on the send path."""

    def __init__(self) -> None:
        self.emits: Counter[str] = Counter()
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, +Inf last
        self.latency_sum = 0.0

    def collect(self) -> Iterator[Metric]:
        emits = CounterMetricFamily(
            f"{PREFIX}_emits",
            "Socket.IO emits by event (one per emit, whatever the number of recipients)",
            labels=["event"],
        )
        for event, n in sorted(self.emits.items()):
            emits.add_metric([event], n)
        yield emits
        cumulative, buckets = 0, []
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.latency, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            f"{PREFIX}_commit_to_emit_seconds",
            "from a change's transaction (outbox.created_at) to its emit by this instance",
            buckets=buckets,
            sum_value=self.latency_sum,
        )


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(_FlatCounters(self.counts))
        self._hot = _HotPathFamilies()
        r.register(self._hot)
        self._connects = PromCounter(
            f"{PREFIX}_socket_connects",
            "Socket.IO connects by result: accepted, or the refusal's code",
            ["result"],
            registry=r,
        )
        self._events = PromCounter(
            f"{PREFIX}_client_events",
            "client events by name and result: ok, or the error code of the ack",
            ["event", "result"],
            registry=r,
        )
        self._batches = Histogram(
            f"{PREFIX}_outbox_batch_changes",
            "changes per outbox page read with changes (relay: the lease holder; tail: "
            "each instance's own reader with several instances)",
            ["reader"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._push_jobs = PromCounter(
            f"{PREFIX}_push_jobs",
            "push jobs finished, by status (sent, failed, no_tokens) and the reason of a failure",
            ["status", "reason"],
            registry=r,
        )
        self._push_sends = PromCounter(
            f"{PREFIX}_push_sends",
            "FCM answers per device: sent, dead (token switched off), transient (retried) "
            "or failed, with FCM's error code",
            ["outcome", "reason"],
            registry=r,
        )
        # Label children by labels: `.labels()` costs ~3 us, a dict lookup
        # far less, and emits run thousands of times a second.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    # -- the /healthz counters ---------------------------------------------------

    def inc(self, name: str, by: int = 1) -> None:
        self.counts[name] += by

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

    # -- labelled: each also moves its flat counter where there is one ---------

    def connected(self) -> None:
        self.counts["connects"] += 1
        self._child(self._connects, "accepted").inc()

    def connect_refused(self, code: str) -> None:
        self.counts["connects_refused"] += 1
        self._child(self._connects, code).inc()

    def client_event(self, event: str, result: str) -> None:
        """`result`: "ok", or the error code the client was answered."""
        self.counts["events_in"] += 1
        self._child(self._events, event, result).inc()

    def emitted(self, event: str) -> None:
        self._hot.emits[event] += 1

    def delivered(self, seconds: float) -> None:
        """A change's events went out `seconds` after its transaction."""
        seconds = max(seconds, 0.0)
        self._hot.latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._hot.latency_sum += seconds

    def outbox_batch(self, reader: str, changes: int) -> None:
        self._child(self._batches, reader).observe(changes)

    def push_job(self, status: str, reason: str = "") -> None:
        self._child(self._push_jobs, status, reason).inc()

    def push_send(self, outcome: str, reason: str = "") -> None:
        self._child(self._push_sends, outcome, reason).inc()

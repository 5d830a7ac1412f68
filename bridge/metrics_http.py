"""`GET /metrics`: the Prometheus text format, from the app's own registry
(bridge/metrics.py) plus what is read at scrape time rather than counted:
sockets connected, the outbox lag (one indexed query), the database pool,
the doorbell, the relay lease and Redis.

Access: no user data is exposed (counts, states, latencies), the same kind
of figures /healthz shows without a token; so it is open unless
`metrics.token` is set, then it wants `Authorization: Bearer <token>`.
Scraping never fails for a dependency being down: what cannot be read in
time is left out of that scrape, and `bridge_database_up` /
`bridge_redis_up` say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from bridge.db_health import DatabaseHealth
from bridge.metrics import PREFIX, Metrics
from bridge.rest import public

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 1.0  # seconds a scrape waits for the database or Redis

# The oldest change not yet past a cursor, and how many: candidates through
# the xid index (only transactions at or after the cursor's xmin), as the
# relay reads its pages. `now()` is this statement's time.
LAG_SQL = """
select count(*) as pending,
       coalesce(extract(epoch from now() - min(o.created_at)), 0)::float8 as lag
from bridge.outbox o
where o.xid >= pg_snapshot_xmin($1::text::pg_snapshot)
  and not pg_visible_in_snapshot(o.xid, $1::text::pg_snapshot)
"""
RELAY_CURSOR_SQL = "select done::text, (select armed from bridge.doorbell) from bridge.relay_cursor"


# Doorbell states (`Doorbell.status()`) in which a change would be heard now.
LIVE_STATES = frozenset({"listening", "live", "polling"})


def doorbell_live(doorbell: Any) -> bool:
    """Whether the doorbell would hear a change now: LISTEN while its
    connection is up, Realtime while its channel is live; the poll has
    nothing to lose."""
    return doorbell is not None and doorbell.status().get("state") in LIVE_STATES


class MetricsEndpoint:
    def __init__(
        self,
        metrics: Metrics,
        *,
        pool: asyncpg.Pool,
        health: DatabaseHealth,
        sockets: Callable[[], int],
        doorbell_kind: str,
        doorbell: Callable[[], Any],
        lease_held: Callable[[], bool | None],
        tail_cursor: Callable[[], str | None],
        redis: Any = None,
        token: str = "",
    ) -> None:
        self.metrics = metrics
        self.pool = pool
        self.health = health
        self.sockets = sockets
        self.doorbell_kind = doorbell_kind
        self.doorbell = doorbell
        self.lease_held = lease_held
        self.tail_cursor = tail_cursor
        self.redis = redis
        self.token = token
        self._scraped: list[Metric] = []
        metrics.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """For the registry: the figures read by the last refresh."""
        yield from self._scraped

    @public  # no Supabase token; `metrics.token` when set
    async def handle(self, request: web.Request) -> web.Response:
        if self.token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return web.json_response(
                    {"error": {"code": "unauthorized", "message": "a metrics token is required"}},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        self._scraped = await self.refresh()
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    def route(self) -> web.RouteDef:
        return web.get("/metrics", self.handle)

    async def refresh(self) -> list[Metric]:
        out: list[Metric] = []

        def gauge(name: str, help_text: str, value: float, **labels: str) -> None:
            family = GaugeMetricFamily(f"{PREFIX}_{name}", help_text, labels=list(labels))
            family.add_metric(list(labels.values()), value)
            out.append(family)

        gauge("sockets_connected", "Socket.IO sockets connected to this instance", self.sockets())
        size, idle = self.pool.get_size(), self.pool.get_idle_size()
        pool = GaugeMetricFamily(
            f"{PREFIX}_db_pool_connections",
            "connections of the database pool by state",
            labels=["state"],
        )
        pool.add_metric(["in_use"], size - idle)
        pool.add_metric(["idle"], idle)
        out.append(pool)
        gauge("db_pool_max_connections", "the pool's size limit", self.pool.get_max_size())
        gauge(
            "database_up",
            "1 while the database answers, 0 during an outage",
            float(self.health.up),
        )
        bell = self.doorbell()
        gauge(
            "doorbell_up",
            "1 while the outbox doorbell (kind: listen, realtime, poll) would hear a change",
            float(doorbell_live(bell)),
            kind=self.doorbell_kind,
        )
        state = bell.status().get("state") if bell is not None else None
        if state:
            gauge(
                "doorbell_state",
                "the doorbell's state as on /healthz (listening, live, joining, down, ...)",
                1.0,
                kind=self.doorbell_kind,
                state=str(state),
            )
        held = self.lease_held()
        if held is not None:
            gauge("relay_lease_held", "1 on the instance relaying the outbox", float(held))
        await self._outbox(out, gauge)
        if self.redis is not None:
            gauge("redis_up", "1 when Redis answered a PING in time", float(await self._ping()))
        return out

    async def _outbox(self, out: list[Metric], gauge: Any) -> None:
        lag = GaugeMetricFamily(
            f"{PREFIX}_outbox_lag_seconds",
            "age of the oldest committed change not yet past the reader's cursor "
            "(relay: push jobs and the stored cursor; tail: this instance's emits)",
            labels=["reader"],
        )
        pending = GaugeMetricFamily(
            f"{PREFIX}_outbox_pending_changes",
            "committed changes not yet past the reader's cursor",
            labels=["reader"],
        )
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                async with self.pool.acquire() as conn:
                    cursor = await conn.fetchrow(RELAY_CURSOR_SQL)
                    assert cursor is not None  # one row, made by the migration
                    readers = [("relay", cursor[0])]
                    tail = self.tail_cursor()
                    if tail is not None:
                        readers.append(("tail", tail))
                    for reader, snapshot in readers:
                        row = await conn.fetchrow(LAG_SQL, snapshot)
                        assert row is not None  # an aggregate
                        lag.add_metric([reader], row["lag"])
                        pending.add_metric([reader], row["pending"])
        except (Exception, TimeoutError) as exc:  # an outage: left out of this scrape
            log.debug("metrics: outbox not read", extra={"error": type(exc).__name__})
            return
        out += [lag, pending]
        if cursor[1] is not None:
            gauge(
                "doorbell_armed",
                "1 while writers are asked to NOTIFY (the relay is idle)",
                float(cursor[1]),
            )

    async def _ping(self) -> bool:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SCRAPE_TIMEOUT):
                await self.redis.ping()
                return True
        return False

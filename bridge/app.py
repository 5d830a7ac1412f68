"""Building the daemon and running its lifecycle. Background tasks are
started in `start()` and cancelled and awaited in `stop()`, nowhere else."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import socketio
from aiohttp import web

from bridge.attachments.api import AttachmentRoutes, open_attachments
from bridge.attachments.service import Attachments
from bridge.auth import TokenVerifier
from bridge.cors import cors_middleware
from bridge.db import open_pool
from bridge.db_health import LIBRARY_LOGGER, DatabaseHealth
from bridge.demo.routes import demo_routes
from bridge.embedded import EmbeddedPostgres
from bridge.fanout import DirectAsyncManager, client_manager, local_emitter, stop_manager
from bridge.gc_tuning import GC_THRESHOLDS, GcWatch
from bridge.limits import Limiter, open_limiter
from bridge.logs import LibraryNoiseFilter, install_noise_filters, remove_noise_filters
from bridge.metrics import Metrics
from bridge.metrics_http import MetricsEndpoint
from bridge.migrate import prepare_database
from bridge.outbox.doorbells.base import Doorbell
from bridge.outbox.doorbells.choice import doorbell_choice, open_doorbell
from bridge.outbox.lease import Lease
from bridge.outbox.relay import OutboxRelay, PushSink
from bridge.outbox.retention import keep_pruning
from bridge.outbox.tail import OutboxTail
from bridge.permissions import PermissionWatch
from bridge.preflight import ensure as preflight
from bridge.preflight import jwks_url
from bridge.presence import Presence, PresenceRegistry, open_registry
from bridge.push.fcm import FcmSender
from bridge.push.intake import push_intake
from bridge.push.queue import PushQueue
from bridge.push.worker import STOP_GRACE as PUSH_STOP_GRACE
from bridge.push.worker import PushWorker
from bridge.rest import RestApi, make_auth_middleware, make_error_middleware, make_limit_middleware
from bridge.safety.rest import SafetyRoutes
from bridge.server import SocketGateway
from bridge.settings import Settings
from bridge.sockets import hang_up, socket_server
from bridge.store import SEND_WRITING, Store
from bridge.tasks import stop_tasks

if TYPE_CHECKING:
    from bridge.outbox.ring import RedisRing

log = logging.getLogger(__name__)

# Batches of sends written at once (group commit, bridge/group_commit.py).
SEND_WRITERS = 2
SHUTDOWN_GRACE = 5.0  # seconds open requests and sockets get to finish on stop
# Seconds background tasks get to finish after their cancel before they are
# cancelled again: the push worker waits PUSH_STOP_GRACE for sends in
# progress, then stops the rest and releases their leases.
TASKS_GRACE = PUSH_STOP_GRACE + 3.0
STOP_DEADLINE = 15.0  # seconds after SIGTERM the process exits, stopped in order or not


class BridgeApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.embedded: EmbeddedPostgres | None = None
        self.pool: asyncpg.Pool | None = None
        self.store: Store | None = None
        self.runner: web.AppRunner | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.doorbell: Doorbell | None = None
        self.doorbell_kind = doorbell_choice(settings)
        self.relay: OutboxRelay | None = None
        self.gateway: SocketGateway | None = None
        self.registry: PresenceRegistry | None = None
        self.fcm: FcmSender | None = None
        self.push_worker: PushWorker | None = None
        self.port: int | None = None
        self._gc_watch = GcWatch(self.metrics)
        self.health = DatabaseHealth(self.metrics)
        self.tail: OutboxTail | None = None
        self.ring: RedisRing | None = None
        # Where emits go; with Redis, python-socketio's manager runs a
        # subscription task of its own from the first connection on.
        self.manager: socketio.AsyncManager | None = None
        self._noise_filter: LibraryNoiseFilter | None = None
        self.limits: Limiter | None = None
        self.attachments: Attachments | None = None

    async def _database(self) -> str:
        s = self.settings
        supabase_dir = Path(s.database.supabase_dir)
        if s.embedded:
            self.embedded = EmbeddedPostgres(s.database.data_dir, s.database.embedded_port)
            dsn = await asyncio.to_thread(self.embedded.start)
            await prepare_database(dsn, supabase_dir, bootstrap=True, seed=True)
            return dsn
        if s.database.migrate:
            await prepare_database(s.database.url, supabase_dir, bootstrap=False, seed=False)
        return s.database.url

    async def start(self) -> None:
        s = self.settings
        dsn = await self._database()
        await preflight(s, dsn)  # PreflightError names every cause
        self.pool = await open_pool(dsn, min_size=2, max_size=s.database.pool_size)
        store = self.store = Store(self.pool, PermissionWatch(self.metrics))
        await store.apply_edit_window(s.server.edit_window)  # enforced in SQL
        verifier = TokenVerifier(s.jwt_secret, jwks_url(s))
        presence = Presence(
            grace=s.presence.offline_grace,
            typing_ttl=s.presence.typing_ttl,
            typing_throttle=s.presence.typing_throttle,
        )
        manager = self.manager = client_manager(s)
        if isinstance(manager, DirectAsyncManager):
            manager.max_queued = s.server.max_queued_packets
            manager.on_slow_socket = self._slow_socket
        self._noise_filter = install_noise_filters()
        logging.getLogger(LIBRARY_LOGGER).addFilter(self.health)
        sio = socket_server(
            manager,
            compression=s.server.websocket_compression,
            metrics=self.metrics,
            ping_interval=s.server.ping_interval,
            ping_timeout=s.server.ping_timeout,
        )
        self.registry = open_registry(presence, s.redis.url, instance_ttl=s.presence.instance_ttl)
        base = s.storage_public_base
        self.limits = open_limiter(s.limits, self.metrics, s.redis.url)
        self.attachments = open_attachments(s, store, self.health)
        log.info(
            "attachments: %s",
            f"Supabase Storage bucket {s.attachments.bucket}"
            if s.attachments_backend == "storage"
            else f"files under {s.attachments_dir} (no Storage service)",
        )
        self.gateway = SocketGateway(
            sio,
            store,
            verifier,
            presence,
            self.registry,
            self.metrics,
            max_message_chars=s.server.max_message_chars,
            storage_public_base=base,
            health=self.health,
            limits=self.limits,
            max_sockets_per_user=s.limits.max_sockets_per_user,
            attachments=self.attachments,
            attachments_public_url=s.attachments.public_url,
        )
        self.registry.on_gone = self.gateway.user_gone
        await self.registry.start()
        rest = RestApi(
            store,
            self.registry,
            self.metrics,
            storage_public_base=base,
            max_message_chars=s.server.max_message_chars,
            test_endpoints=not s.production,
            socket_count=self.gateway.online_count,
            health=self.health,
            doorbell=lambda: self.doorbell,
            attachments=self.attachments,
        )
        app = web.Application(
            middlewares=[
                cors_middleware(s.server.cors_origins),
                make_error_middleware(self.metrics, self.health),
                make_auth_middleware(verifier, store.user_exists),
                make_limit_middleware(self.limits),
            ],
            client_max_size=256 * 1024,
        )
        app.add_routes(rest.routes())
        app.add_routes([self._metrics_endpoint(self.pool).route()])
        app.add_routes(  # blocks, reports, mutes, quiet hours
            SafetyRoutes(self.gateway.safety, self.gateway.show_status_between).routes()
        )
        app.add_routes(AttachmentRoutes(self.attachments, s.attachments.public_url).routes())
        app.add_routes(demo_routes(s, store, base))  # the demo page, outside production
        sio.attach(app)
        # Stop: sockets are hung up once the listener is closed, so clients
        # reconnect at once and the runner's cleanup does not wait out its grace.
        app.on_shutdown.append(lambda _app: hang_up(sio, SHUTDOWN_GRACE))

        pushes = self._pushes(self.pool)
        self.doorbell = open_doorbell(
            s, self.doorbell_kind, metrics=self.metrics, health=self.health, dsn=dsn
        )
        await self.doorbell.start()
        # With several instances each tails the outbox for its own sockets.
        self.tail = self._tail(store, sio, base)
        if self.tail is not None:
            await self.tail.start()  # before any socket connects
        self.relay = OutboxRelay(
            store,
            self.doorbell,
            None if self.tail is not None else self._emitter(sio),
            storage_public_base=base,
            batch_size=s.outbox.batch_size,
            poll_interval=s.outbox.poll_interval,
            metrics=self.metrics,
            lease=Lease(dsn),
            pushes=pushes,
            after_batch=self._relayed_page,
            health=self.health,
            emit_at_commit=s.outbox.emit_at_commit,
        )
        store.on_write = self._wrote
        if self.relay.early is not None:  # a single instance: sends go out at their commit
            store.on_changes = self.relay.early.committed
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        await self.runner.setup()
        site = web.TCPSite(self.runner, s.server.host, s.server.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else s.server.port
        self.tasks = [
            asyncio.create_task(self.relay.run(), name="outbox-relay"),
            asyncio.create_task(self.gateway.run_timers(), name="socket-timers"),
            asyncio.create_task(sio.eio.heartbeats.run(), name="socket-heartbeats"),
            asyncio.create_task(
                keep_pruning(store, s.outbox.retention_hours, self.health), name="outbox-prune"
            ),
            asyncio.create_task(self.health.run_probe(self.pool), name="database-probe"),
            asyncio.create_task(self.attachments.removals.run(), name="attachment-removals"),
            *self._tail_tasks(),
            *(
                asyncio.create_task(store.sends.run(), name=f"send-writer-{i}")
                for i in range(SEND_WRITERS)
            ),
        ]
        store.send_connections.keep = SEND_WRITING  # one per batch in flight
        if self.push_worker is not None:
            self.tasks.append(asyncio.create_task(self.push_worker.run(), name="push-worker"))
        # Last: a start that failed (and was not stopped) leaves no watch behind.
        gc.callbacks.append(self._gc_watch)
        log.info("bridge listening", extra={"port": self.port, "embedded": s.embedded})

    def _metrics_endpoint(self, pool: asyncpg.Pool) -> MetricsEndpoint:
        """GET /metrics; what it reads at scrape time, it reads from here."""
        gateway, registry = self.gateway, self.registry
        return MetricsEndpoint(
            self.metrics,
            pool=pool,
            health=self.health,
            sockets=gateway.online_count if gateway is not None else lambda: 0,
            doorbell_kind=self.doorbell_kind,
            doorbell=lambda: self.doorbell,
            lease_held=lambda: self.relay.lease.held if self.relay and self.relay.lease else None,
            tail_cursor=lambda: self.tail.cursor if self.tail is not None else None,
            redis=getattr(registry, "redis", None),  # the Redis backend's client, if in use
            token=self.settings.metrics.token,
        )

    def _tail(self, store: Store, sio: socketio.AsyncServer, base: str) -> OutboxTail | None:
        s = self.settings
        if not s.redis.url:
            return None
        tail = OutboxTail(
            store,
            self._emitter(sio),
            storage_public_base=base,
            batch_size=s.outbox.batch_size,
            health=self.health,
            metrics=self.metrics,
        )
        from bridge.outbox.ring import RedisRing  # redis only with REDIS_URL

        self.ring = RedisRing(s.redis.url, tail.ring)
        return tail

    def _tail_tasks(self) -> list[asyncio.Task[None]]:
        if self.tail is None or self.ring is None:
            return []
        return [
            asyncio.create_task(self.tail.run(), name="outbox-tail"),
            asyncio.create_task(self.ring.run(), name="outbox-ring"),
        ]

    def _relayed_page(self) -> None:
        """After the relay's page with changes: pushes to send, and other
        instances' tails to wake."""
        if self.push_worker is not None:
            self.push_worker.wake.set()
        if self.ring is not None:
            self.ring.publish()

    def _wrote(self, settled: bool = False) -> None:
        """This process committed a change: its relay (if it holds the
        lease) and its tail look now; other instances hear the relay's ring.
        `settled`: the change went out at its commit already (the relay may
        gather it with others, bridge/outbox/relay.py)."""
        if self.relay is not None:
            self.relay.wrote(settled)
        if self.tail is not None:
            self.tail.ring()

    def _slow_socket(self, sid: str) -> None:
        self.metrics.inc("slow_sockets_dropped")
        log.warning("socket dropped: it stopped reading", extra={"sid": sid})

    def _pushes(self, pool: asyncpg.Pool) -> PushSink | None:
        """The push pipeline, when FCM credentials are configured."""
        s = self.settings
        if not s.fcm.credentials:
            log.warning("pushes are off: no FCM credentials (GOOGLE_APPLICATION_CREDENTIALS)")
            return None
        self.fcm = FcmSender(s.fcm.credentials, s.fcm.project_id, s.fcm.endpoint)
        self.push_worker = PushWorker(
            PushQueue(pool), self.fcm, s.push, self.metrics, health=self.health
        )
        assert self.registry is not None
        return push_intake(self.registry, self.metrics, s.push.cooldown)

    def _emitter(self, sio: socketio.AsyncServer) -> Any:
        """How the outbox's changes (the relay's, a tail's, a send's at its
        commit) reach this instance's sockets: every instance has its own
        reader of the outbox, so no emit of theirs goes through Redis."""
        here, metrics = local_emitter(sio.manager), self.metrics

        async def emit(event: str, payload: dict[str, Any], rooms: Sequence[str]) -> None:
            metrics.emitted(event)
            await here(event, payload, rooms)

        return emit

    async def stop(self) -> None:
        """Stops everything `start` started, in reverse; safe to call twice."""
        tasks, self.tasks = self.tasks, []
        await stop_tasks(tasks, TASKS_GRACE)
        if self._gc_watch in gc.callbacks:
            gc.callbacks.remove(self._gc_watch)
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()  # sockets close; disconnect handlers still see the registry
        manager, self.manager = self.manager, None
        await stop_manager(manager)
        doorbell, self.doorbell = self.doorbell, None
        if doorbell is not None:
            await doorbell.stop()
        ring, self.ring = self.ring, None
        if ring is not None:
            await ring.close()
        registry, self.registry = self.registry, None
        if registry is not None:
            await registry.stop()
        limits, self.limits = self.limits, None
        if limits is not None:
            await limits.close()
        attachments, self.attachments = self.attachments, None
        if attachments is not None:
            await attachments.backend.close()
        store, self.store = self.store, None
        if store is not None:
            await store.send_connections.close()
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), SHUTDOWN_GRACE)
            except TimeoutError:
                log.warning("database connections still busy on stop; closing them")
                pool.terminate()
        fcm, self.fcm = self.fcm, None
        if fcm is not None:
            await fcm.close()
        embedded, self.embedded = self.embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.release)
        noise_filter, self._noise_filter = self._noise_filter, None
        if noise_filter is not None:
            remove_noise_filters(noise_filter)
        logging.getLogger(LIBRARY_LOGGER).removeFilter(self.health)
        log.info("bridge stopped")


async def serve(settings: Settings) -> None:
    """Runs until cancelled (SIGINT / SIGTERM)."""
    gc.set_threshold(*GC_THRESHOLDS)
    app = BridgeApp(settings)
    try:
        await app.start()
        gc.freeze()  # start-up objects live forever: keep them out of every collection
        print(f"chat-bridge listening on http://{settings.server.host}:{app.port}", flush=True)
        await asyncio.Event().wait()
    finally:
        await app.stop()

"""The Postgres LISTEN doorbell: a dedicated connection listening on
`bridge_outbox`, rebuilt with capped backoff when it drops. While it is down
the relay still polls, so nothing is lost, only later."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from bridge.db_health import DatabaseHealth
from bridge.outbox.doorbells.base import SupervisedDoorbell
from bridge.tasks import wait_set

log = logging.getLogger(__name__)

CHANNEL = "bridge_outbox"
APPLICATION_NAME = "chat-bridge doorbell"
MAX_BACKOFF = 30.0


class ListenDoorbell(SupervisedDoorbell):
    needs_arming = True
    cheap_rings = True
    task_name = "listen-doorbell"
    kind = "listen"

    def __init__(self, dsn: str, health: DatabaseHealth | None = None) -> None:
        super().__init__()
        self._dsn = dsn
        # When the database went away, listen again as soon as it is back.
        self._health = health
        self.connected = asyncio.Event()

    def _on_notify(self, *_args: object) -> None:
        self._bell.ring()

    async def _supervise(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": APPLICATION_NAME}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                # Armed writers NOTIFY (not realtime.send) from now on.
                await conn.execute(
                    "update bridge.doorbell set via = 'listen' where via is distinct from 'listen'"
                )
                self.connected.set()
                self.state = "listening"
                backoff = 0.5
                log.info("listening for outbox doorbell")
                # A ring may have been missed while we were away.
                self._bell.ring()
                while not lost.is_set():
                    await wait_set(lost, 30)
                    if not lost.is_set():
                        await conn.execute("select 1")
                log.warning("doorbell connection lost")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("doorbell connection failed", extra={"error": repr(exc)})
            finally:
                self.connected.clear()
                self.state = "down"
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            if self._health is not None and not self._health.up:
                await self._health.wait_back(backoff)
            else:
                await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

"""Which instance relays: a session advisory lock held on a connection of
its own."""

from __future__ import annotations

import logging

import asyncpg

from bridge import locks

log = logging.getLogger(__name__)


class Lease:
    """Leadership of the relay among bridge instances: a session-level
    advisory lock on a dedicated connection. One instance relays, so changes
    go out in commit order; when it dies its connection (and the lock) goes,
    and a standby takes over within a poll interval."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        await self.release()
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "chat-bridge relay lease"}
        )
        if await conn.fetchval("select pg_try_advisory_lock($1)", locks.RELAY_LEASE):
            self._conn = conn
            log.info("relay lease acquired")
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()

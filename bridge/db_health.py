"""Whether the database can be reached, as the daemon experiences it.

A database outage is nobody's fault on the request path: clients get a
retryable `unavailable` (socket ack) or 503 with Retry-After (REST), the log
gets one warning when the database goes and one line when it is back (with
how many requests failed meanwhile), never a traceback per request. While it
is down a probe looks every PROBE_EVERY seconds, so the relay and everyone
waiting resume within that of its return instead of after a grown backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg

from bridge.tasks import wait_set

log = logging.getLogger(__name__)

PROBE_EVERY = 0.5
RETRY_AFTER = 2  # seconds clients are told to wait
LIBRARY_LOGGER = "asyncpg.pool"  # logs a traceback per failed reconnect

# Errors that mean "the database is not there", not "the request is wrong".
_OUTAGE_STATES = {
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up / shutting down)
    "53300",  # too_many_connections
}


def is_outage(exc: BaseException) -> bool:
    # InternalClientError: a pooled connection left mid-operation when the
    # server went away under it (the bridge never shares a connection).
    connection_lost = (
        OSError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.InternalClientError,
    )
    if isinstance(exc, connection_lost):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state in _OUTAGE_STATES or state.startswith("08")
    return False


class DatabaseHealth:
    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self._back = asyncio.Event()
        self._back.set()
        self._down_since: float | None = None
        self._failed = 0

    @property
    def up(self) -> bool:
        return self._back.is_set()

    def problem(self) -> str | None:
        if self.up:
            return None
        return f"database unreachable for {time.monotonic() - (self._down_since or 0):.0f} s"

    def failed(self, exc: BaseException) -> None:
        """A request or the relay could not reach the database."""
        self._failed += 1
        self.metrics.inc("database_unavailable")
        if self.up:
            self._back.clear()
            self._down_since = time.monotonic()
            log.warning("database unreachable", extra={"error": type(exc).__name__})

    def log_failure(self, exc: BaseException, message: str, **extra: Any) -> None:
        """For background loops: an outage is counted (one warning for the
        whole outage); anything else is the bridge's bug, with a traceback."""
        if is_outage(exc):
            self.failed(exc)
        else:
            log.exception(message, extra=extra)

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logging filter on asyncpg's pool (which logs a traceback each
        time it fails to reconnect): an outage is counted here instead."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_outage(exc):
            self.failed(exc)
            return False
        return True

    async def after_failure(
        self, exc: BaseException, backoff: float, *, cap: float, logger: logging.Logger, what: str
    ) -> float:
        """For a loop whose turn failed: in an outage, counted and resumed as
        soon as the probe reaches the database (not after a grown backoff);
        otherwise the bridge's bug, logged with its traceback, and a capped
        backoff. Returns the next backoff."""
        if is_outage(exc):
            self.failed(exc)
            await self.wait_back(cap)
            return backoff
        logger.exception(what, extra={"backoff": backoff})
        await asyncio.sleep(backoff)
        return min(backoff * 2, cap)

    async def wait_back(self, timeout: float) -> bool:
        """Waits until the database is back (or `timeout` passes)."""
        return await wait_set(self._back, timeout)

    async def run_probe(self, pool: asyncpg.Pool) -> None:
        """While the database is marked down, asks it every PROBE_EVERY
        seconds; the first answer ends the outage for everyone waiting."""
        while True:
            await asyncio.sleep(PROBE_EVERY)
            if self.up:
                continue
            try:
                await pool.fetchval("select 1", timeout=PROBE_EVERY * 2)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue
            self.reached()

    def reached(self) -> None:
        """The database answered: an outage, if there was one, is over."""
        if self.up:
            return
        took = time.monotonic() - (self._down_since or time.monotonic())
        log.warning(
            "database back",
            extra={"down_seconds": round(took, 1), "failed_requests": self._failed},
        )
        self._failed = 0
        self._down_since = None
        self._back.set()

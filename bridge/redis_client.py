"""The bridge's Redis clients. redis-py's default pool raises "Too many
connections" past 100 at once, which a burst of connecting sockets reaches
(every connect touches presence); a blocking pool makes such a burst wait
for a free connection instead. Imported only when REDIS_URL is set."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

MAX_CONNECTIONS = 64  # per client; Redis's own default limit is 10,000
WAIT_FOR_CONNECTION = 5.0  # seconds a call may wait for a free connection


def redis_client(url: str, *, call_timeout: float | None = None, **options: Any) -> aioredis.Redis:
    """A client on a blocking pool of at most MAX_CONNECTIONS connections.
    With `call_timeout`, connecting and each call give up after that many
    seconds: what is best effort (presence, shared rate limits) must not
    hang on a Redis that stopped answering without closing anything."""
    if call_timeout is not None:
        options.update(socket_timeout=call_timeout, socket_connect_timeout=call_timeout)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_FOR_CONNECTION, **options
    )
    return aioredis.Redis(connection_pool=pool)

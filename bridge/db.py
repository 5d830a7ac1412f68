"""Connection-level helpers shared by the store, the tests and the bench:
running statements as a signed-in user, the way PostgREST does."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bridge import jsoncodec

# A plain connection or one lent by a pool: both run the same statements.
Connection = asyncpg.Connection | PoolConnectionProxy


async def json_codecs(conn: asyncpg.Connection) -> None:
    """json and jsonb decoded once, by the driver, with the bridge's codec
    (orjson): readers get dicts and lists. Parameters may be Python values
    or text that is already JSON (passed through as it is)."""

    def encode(value: Any) -> str:
        return value if isinstance(value, str) else jsoncodec.dumps(value)

    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=encode, decoder=jsoncodec.loads, schema="pg_catalog"
        )


async def open_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """The pool client requests, the relay and the tails share: JSON decoded
    by the driver, no reset round trip between borrowers."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=json_codecs, reset=keep_session
    )
    return pool


class KeptConnections:
    """Pool connections a hot path keeps between its statements instead of
    borrowing one per statement: asyncpg's acquire and release (timers,
    timeouts, a weak set, a shielded release) cost the send path more
    Python than the statement's own call. Up to `keep` are kept (one per
    batch in flight); none until the app turns keeping on, so a Store used
    without the app leaves nothing held when its pool closes. A statement
    that fails gives its connection back to the pool, which replaces a
    broken one; `close` gives back all of them, before the pool closes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.keep = 0
        self._idle: list[Any] = []

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self._take()
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        except BaseException:
            await self.pool.release(conn)
            raise
        if len(self._idle) < self.keep:
            self._idle.append(conn)
        else:
            await self.pool.release(conn)
        return rows

    async def _take(self) -> Any:
        """A kept connection still open, else the pool's. One the server
        ended while it was kept (an administrator's or a failover's doing)
        went back to the pool as it closed (asyncpg detaches it then, and
        asks about it fail), and the pool replaces it: no send fails for it."""
        while self._idle:
            conn = self._idle.pop()
            with contextlib.suppress(asyncpg.InterfaceError):
                if not conn.is_closed():
                    return conn
            await self.pool.release(conn)  # nothing to do if the pool has it
        return await self.pool.acquire()

    async def fetchval(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        return rows[0][0] if rows else None

    async def close(self) -> None:
        self.keep = 0
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.pool.release(conn)


async def keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset between borrowers: nothing to do, and no round trip.
    Pool connections never carry session state: roles, claims and advisory
    locks are all transaction-local (`set_config(..., true)`, `*_xact_lock`);
    LISTEN and the relay lease use connections of their own. (asyncpg's
    default reset costs a query on every release.)"""


@asynccontextmanager
async def redoable_transaction(conn: Connection) -> AsyncIterator[Connection]:
    """A transaction whose COMMIT does not wait for its WAL to reach disk
    (`synchronous_commit = off` for it alone), begun in the same round trip.
    Only for work that a crash may undo without harm because it is simply
    done again, such as the relay's acknowledgement. It is still atomic, and
    any later synchronous commit (a push marked sent) flushes it first."""
    await conn.execute("begin; set local synchronous_commit = off")
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("rollback")
        raise
    await conn.execute("commit")


def user_claims(user_id: str, role: str = "authenticated", **extra: Any) -> dict[str, Any]:
    """The JWT claims PostgREST would set for a signed-in user."""
    return {"sub": user_id, "role": role, "aud": "authenticated", **extra}


@asynccontextmanager
async def acting_as(
    conn: Connection, claims: Mapping[str, Any] | None
) -> AsyncIterator[Connection]:
    """A transaction in which statements run as the API role of `claims`
    (anon when None), with `request.jwt.claims` set: RLS and grants apply
    exactly as they do for supabase-js."""
    role = "anon" if claims is None else str(claims.get("role", "authenticated"))
    if role not in ("anon", "authenticated", "service_role"):
        raise ValueError(f"not an API role: {role!r}")
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
            role,
            json.dumps(dict(claims or {"role": "anon"})),
        )
        yield conn

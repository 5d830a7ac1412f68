"""Start-up checks for the Realtime doorbell (bridge.preflight runs them when
it is chosen): keys that cannot open its private channel, a database where
writers cannot ring it, and a project that refuses the channel. Without them
the doorbell would rebuild forever while every change waited for the poll."""

from __future__ import annotations

import asyncpg

from bridge.outbox.doorbells.choice import realtime_doorbell, realtime_key_problem
from bridge.settings import Settings

USE_ANOTHER = "or choose outbox.doorbell = listen (direct connection) or poll"


async def database_problem(dsn: str) -> str | None:
    """Whether armed writers can ring: realtime.send exists (Realtime creates
    it on the projects it serves) and the owner of bridge.ring_doorbell, as
    whom it runs, may insert into realtime.messages."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None  # reported by the database checks
    try:
        row = await conn.fetchrow(
            "select to_regprocedure('realtime.send(jsonb,text,text,boolean)') is not null as send,"
            " (select pg_get_userbyid(proowner) from pg_proc"
            "  where oid = to_regprocedure('bridge.ring_doorbell()')) as owner"
        )
        if row is None or not row["send"]:
            return (
                "the Realtime doorbell rings through Broadcast from Database, but the database"
                " has no realtime.send() (Supabase Realtime creates it on the projects it"
                f" serves): point SUPABASE_URL at this database's project, {USE_ANOTHER}"
            )
        if row["owner"] and not await conn.fetchval(
            "select has_table_privilege($1, 'realtime.messages', 'INSERT')", row["owner"]
        ):
            return (
                f"role {row['owner']} owns bridge.ring_doorbell() but cannot insert into"
                f" realtime.messages, so writers' rings would be lost: grant insert on"
                f" realtime.messages to {row['owner']}"
            )
    except asyncpg.PostgresError as exc:
        return f"cannot check the Realtime doorbell's database side: {exc}"
    finally:
        await conn.close()
    return None


async def realtime_problems(settings: Settings, dsn: str | None) -> list[str]:
    key_problem = realtime_key_problem(settings)
    if key_problem is not None:
        return [key_problem]
    problems: list[str] = []
    if dsn is not None:
        problem = await database_problem(dsn)
        if problem is not None:
            problems.append(problem)
    from bridge.outbox.doorbells.realtime import probe

    refusal = await probe(realtime_doorbell(settings))
    if refusal is not None:
        problems.append(
            f"Supabase Realtime at {settings.supabase.url} refuses the doorbell's private"
            f" channel ({refusal}): {advice(settings, refusal)}"
        )
    return problems


def advice(settings: Settings, refusal: str) -> str:
    if "JwtSignatureError" in refusal or "JwtSignerError" in refusal:
        if settings.supabase.jwt_secret:
            return (
                "the project no longer accepts tokens signed with the legacy JWT secret; set"
                " SUPABASE_SERVICE_ROLE_KEY to a secret API key (sb_secret_...) from the"
                " project's API settings"
            )
        return "set SUPABASE_SERVICE_ROLE_KEY to a secret API key (sb_secret_...)"
    if "Invalid API key" in refusal or "HTTP 40" in refusal:
        return "SUPABASE_SERVICE_ROLE_KEY is not a key of this project (revoked or mistyped)"
    if "Unauthorized" in refusal:
        return (
            "the key's role may not read the bridge's topic: use the service role's key, and"
            " apply the migrations (policies on realtime.messages)"
        )
    return USE_ANOTHER

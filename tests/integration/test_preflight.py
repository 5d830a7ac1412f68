"""Start-up checks against real databases and a real JWKS endpoint: `bridge
check` prints the verdict, `bridge run` refuses to start with the same one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web

from bridge.embedded import EmbeddedPostgres, free_port
from tests.conftest import create_database
from tests.support.harness import SECRET, run_cli


def production(dsn: str, **extra: str) -> dict[str, str]:
    return {
        "BRIDGE_SERVER_ENVIRONMENT": "production",
        "DATABASE_URL": dsn,
        "SUPABASE_JWT_SECRET": SECRET,
        "SUPABASE_URL": "https://example.supabase.co",
        "SOCKET_PORT": str(free_port()),
        "BRIDGE_SERVER_HOST": "127.0.0.1",
        **extra,
    }


@pytest.fixture
async def jwks() -> AsyncIterator[str]:
    """A JWKS endpoint serving one (public) EC key."""

    async def keys(_: web.Request) -> web.Response:
        key = {"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AA", "y": "AA", "alg": "ES256"}
        return web.Response(text=json.dumps({"keys": [key]}), content_type="application/json")

    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", keys)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json"
    finally:
        await runner.cleanup()


async def test_check_passes_a_configuration_that_can_work(db_dsn: str) -> None:
    """Migrated database, the project's URL, the JWT secret: exit 0."""
    code, out, err = await run_cli("check", env=production(db_dsn))
    assert code == 0, err
    assert "ok" in out


async def test_check_accepts_a_reachable_jwks_instead_of_a_secret(db_dsn: str, jwks: str) -> None:
    """Projects on asymmetric keys need no secret when their JWKS answers."""
    env = production(db_dsn, SUPABASE_JWT_SECRET="", BRIDGE_SUPABASE_JWKS_URL=jwks)
    code, _, err = await run_cli("check", env=env)
    assert code == 0, err


async def test_run_and_check_refuse_what_cannot_work_naming_every_cause(
    pg_cluster: EmbeddedPostgres,
) -> None:
    """No secret with the CLI's local URL (so no JWKS either), and a database
    nobody migrated: one message lists both, `bridge check` and `bridge run`
    exit 1, no traceback, and the daemon never listens."""
    empty = pg_cluster.dsn_for(await create_database(pg_cluster, None))
    env = production(empty, SUPABASE_JWT_SECRET="", SUPABASE_URL=f"http://127.0.0.1:{free_port()}")
    for command in ("check", "run"):
        code, _, err = await run_cli(command, env=env)
        assert code == 1, command
        assert "Traceback" not in err
        assert "refusing to start: 3 problem(s)" in err
        assert "SUPABASE_URL" in err and "this machine" in err
        assert "no way to verify access tokens" in err
        assert "no chat-bridge schema" in err and "`bridge migrate`" in err


async def test_a_role_that_cannot_act_as_the_user_is_refused(
    pg_cluster: EmbeddedPostgres, db_dsn: str
) -> None:
    """A database role without membership in `authenticated` could not write
    as the user under RLS: refused, naming the role and the grant to add."""
    admin = await asyncpg.connect(db_dsn)
    try:
        await admin.execute(
            "do $$ begin if not exists (select 1 from pg_roles where rolname = 'plain_login')"
            " then create role plain_login login; end if; end $$"
        )
    finally:
        await admin.close()
    dsn = db_dsn.replace("postgres@", "plain_login@", 1)
    code, _, err = await run_cli("check", env=production(dsn))
    assert code == 1
    assert "plain_login cannot switch to `authenticated`" in err
    assert "grant authenticated to plain_login" in err

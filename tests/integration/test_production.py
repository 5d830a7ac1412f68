"""The container's way of running, as far as this machine allows: `bridge
migrate` and `bridge run` as their own processes with production settings,
connected as a non-superuser owner role the way Supabase demotes `postgres`
(member of anon / authenticated / service_role, BYPASSRLS, no SUPERUSER),
on a project with Supabase's default privileges and on one without them;
then the seed's flows over REST and sockets.

Not covered here (issue 17 item 1 asks for it): a clean virtualenv install,
and a database built from supabase/postgres' own init scripts (they need
extensions the embedded Postgres lacks); Supabase's schemas come from
bridge/sql/supabase_bootstrap.sql instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.embedded import EmbeddedPostgres, free_port
from bridge.migrate import apply_bootstrap, apply_seed
from tests.conftest import DEFAULT_GRANTS, GRANT_MODES, SUPABASE_DIR, create_database
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import SECRET, Client, run_cli, start_daemon, token

OWNER = "project_owner"
# What Supabase's demote-postgres migration leaves `postgres` with, plus the
# API roles it is a member of (supabase/postgres, migrations/db/migrations/
# 10000000000000_demote-postgres.sql and 20230201083204_grant_auth_roles_to_postgres.sql).
OWNER_SETUP = f"""
do $$ begin
  if not exists (select 1 from pg_roles where rolname = '{OWNER}') then
    create role {OWNER} login nosuperuser createdb createrole bypassrls;
  end if;
end $$;
grant anon, authenticated, service_role to {OWNER};
"""


async def _project(cluster: EmbeddedPostgres, mode: str) -> str:
    """A database laid out like a hosted project, owned by the demoted role."""
    name = await create_database(cluster, None)
    admin = await asyncpg.connect(cluster.dsn_for(name))
    try:
        await apply_bootstrap(admin)
        # The supabase CLI never pushed to this project.
        await admin.execute("drop schema supabase_migrations cascade")
        await admin.execute(OWNER_SETUP)
        await admin.execute(
            f"""
            grant all on database {name} to {OWNER};
            grant all on schema public, auth, storage, extensions to {OWNER};
            grant all on all tables in schema auth, storage to {OWNER};
            alter table storage.objects owner to {OWNER};
            alter table storage.buckets owner to {OWNER};
            alter table auth.users owner to {OWNER};
            alter publication supabase_realtime owner to {OWNER};
            """
        )
        if mode == DEFAULT_GRANTS:
            # Supabase's initial schema, for the role that runs migrations.
            for kind in ("tables", "sequences", "functions"):
                await admin.execute(
                    f"alter default privileges for role {OWNER} in schema public"
                    f" grant all on {kind} to anon, authenticated, service_role"
                )
    finally:
        await admin.close()
    return cluster.dsn_for(name).replace("postgres@", f"{OWNER}@", 1)


@pytest.fixture(params=GRANT_MODES)
async def production_bridge(
    pg_cluster: EmbeddedPostgres, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """`bridge migrate`, the seed, then `bridge run` in production mode as the
    demoted owner role; yields the daemon's URL."""
    dsn = await _project(pg_cluster, request.param)
    env = {
        "DATABASE_URL": dsn,
        "SUPABASE_JWT_SECRET": SECRET,
        "SUPABASE_URL": "https://example.supabase.co",
        "BRIDGE_SERVER_ENVIRONMENT": "production",
    }
    code, _, err = await run_cli("migrate", env=env)
    assert code == 0, err
    conn = await asyncpg.connect(dsn)
    try:
        assert not await conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
        await apply_seed(conn, SUPABASE_DIR / "seed.sql")
    finally:
        await conn.close()
    port = free_port()
    proc = await start_daemon(dsn, port, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


async def test_seed_flows_run_in_production_as_a_non_superuser(production_bridge: str) -> None:
    """Leo and Ava connect over sockets; Leo sends over REST and over the
    socket, Ava receives both, marks them seen, and her chat list shows the
    conversation read; a push token is registered and deleted; /healthz
    stays ok (no missing grant on any of these paths)."""
    url = production_bridge
    ava = Client(url, AVA)
    leo = Client(url, LEO)
    await ava.connect()
    await leo.connect()
    try:
        ack = await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
        assert ack["ok"], ack
        async with aiohttp.ClientSession() as http:

            async def rest(method: str, path: str, user: str, **kw: Any) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token(user)}"}
                async with http.request(method, url + path, headers=headers, **kw) as resp:
                    return resp.status, await resp.json()

            status, sent = await rest(
                "POST",
                "/api/messages/send",
                LEO,
                json={"conversation_id": CAMPAIGN_CONVERSATION, "message": "over REST"},
            )
            assert status == 201, sent
            ack = await leo.call(
                "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "over socket"}
            )
            assert ack["ok"], ack
            for text in ("over REST", "over socket"):
                await ava.wait_for("new_message", lambda d, t=text: d["message"]["content"] == t)
            status, seen = await rest(
                "POST",
                "/api/messages/mark-seen",
                AVA,
                json={"conversation_id": CAMPAIGN_CONVERSATION},
            )
            assert status == 200, seen
            status, listing = await rest("GET", "/api/conversations", AVA)
            assert status == 200, listing
            mine = [c for c in listing["conversations"] if c["id"] == CAMPAIGN_CONVERSATION]
            assert mine and mine[0]["unread_count"] == 0
            status, page = await rest(
                "GET", f"/api/conversations/{CAMPAIGN_CONVERSATION}/messages", AVA
            )
            assert status == 200, page
            status, _ = await rest(
                "POST", "/api/fcm-tokens", LEO, json={"token": "prod-token", "platform": "ios"}
            )
            assert status in (200, 201)
            status, _ = await rest("DELETE", "/api/fcm-tokens/prod-token", LEO)
            assert status == 200
            async with http.get(url + "/healthz") as resp:
                health = await resp.json()
            assert resp.status == 200 and health["status"] == "ok", health
    finally:
        await ava.sio.disconnect()
        await leo.sio.disconnect()

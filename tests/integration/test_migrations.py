"""Migrations on a real, empty Postgres: the Supabase bootstrap plus every
migration apply cleanly, are recorded the way the supabase CLI records them,
and a second run (a restarted bridge) is a no-op."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from bridge.embedded import EmbeddedPostgres
from bridge.migrate import discover, prepare_database
from tests.conftest import NO_DEFAULT_GRANTS, SUPABASE_DIR, both_grant_modes, create_database


async def test_migrations_apply_on_an_empty_database_and_rerun_as_a_no_op(
    pg_cluster: EmbeddedPostgres,
) -> None:
    """First run applies all migrations in order and loads the seed once;
    the second run applies nothing and leaves the data alone."""
    name = await create_database(pg_cluster, None)
    dsn = pg_cluster.dsn_for(name)
    expected = [m.version for m in discover(SUPABASE_DIR / "migrations")]

    first = await prepare_database(dsn, SUPABASE_DIR, bootstrap=True, seed=True)
    assert first == expected
    conn = await asyncpg.connect(dsn)
    try:
        recorded = [
            r["version"]
            for r in await conn.fetch(
                "select version from supabase_migrations.schema_migrations order by version"
            )
        ]
        assert recorded == expected
        counts = await conn.fetchrow(
            "select (select count(*) from public.users) as users,"
            " (select count(*) from public.messages) as messages,"
            " (select count(*) from bridge.outbox) as outbox"
        )
        second = await prepare_database(dsn, SUPABASE_DIR, bootstrap=True, seed=True)
        assert second == []
        again = await conn.fetchrow(
            "select (select count(*) from public.users) as users,"
            " (select count(*) from public.messages) as messages,"
            " (select count(*) from bridge.outbox) as outbox"
        )
        assert dict(again) == dict(counts)
        assert counts["users"] == 3
        # The seed is recorded as the CLI records it, so neither loads it twice.
        seeds = await conn.fetch("select path, hash from supabase_migrations.seed_files")
        body = (SUPABASE_DIR / "seed.sql").read_bytes()
        assert [tuple(r) for r in seeds] == [
            ("supabase/seed.sql", hashlib.sha256(body).hexdigest())
        ]
    finally:
        await conn.close()


@both_grant_modes
async def test_every_public_table_has_row_level_security(
    pg_cluster: EmbeddedPostgres, template_db: str
) -> None:
    """No table the API could expose is left without RLS."""
    conn = await asyncpg.connect(pg_cluster.dsn_for(template_db))
    try:
        missing = await conn.fetch(
            "select n.nspname || '.' || c.relname as name from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind = 'r' and n.nspname in ('public', 'bridge', 'storage')"
            " and not c.relrowsecurity"
        )
        assert [r["name"] for r in missing] == []
    finally:
        await conn.close()


async def test_outbox_is_not_published_for_supabase_realtime(
    pg_cluster: EmbeddedPostgres, template_db: str
) -> None:
    """The outbox's inserts and prunes stay out of Realtime's replication
    poller: the Realtime doorbell rings through Broadcast from Database."""
    conn = await asyncpg.connect(pg_cluster.dsn_for(template_db))
    try:
        tables = await conn.fetch(
            "select schemaname || '.' || tablename as t from pg_publication_tables"
            " where pubname = 'supabase_realtime'"
        )
        assert [r["t"] for r in tables] == []
    finally:
        await conn.close()


@pytest.mark.parametrize("template_db", [NO_DEFAULT_GRANTS], indirect=True)
async def test_every_public_table_and_policy_helper_is_granted_explicitly(
    pg_cluster: EmbeddedPostgres, template_db: str
) -> None:
    """On a project without default privileges ("auto_expose_new_tables =
    false") the migrations' own grants let signed-in users and the service
    role read every table of the app and run every function a policy calls;
    anon gets nothing in public."""
    conn = await asyncpg.connect(pg_cluster.dsn_for(template_db))
    try:
        tables = await conn.fetch(
            "select c.oid::regclass::text as name,"
            " has_table_privilege('authenticated', c.oid, 'select') as authenticated,"
            " has_table_privilege('service_role', c.oid, 'select') as service_role,"
            " has_table_privilege('anon', c.oid, 'select, insert, update, delete') as anon"
            " from pg_class c where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace"
        )
        assert tables
        for t in tables:
            assert (t["authenticated"], t["service_role"], t["anon"]) == (True, True, False), t
        helpers = await conn.fetch(
            "select distinct p.oid::regprocedure::text as name,"
            " has_function_privilege('authenticated', p.oid, 'execute') as ok"
            " from pg_policies pol"
            " join pg_proc p on p.pronamespace = 'public'::regnamespace"
            "  and (pol.qual like '%' || p.proname || '(%'"
            "       or pol.with_check like '%' || p.proname || '(%')"
        )
        assert helpers
        assert [h["name"] for h in helpers if not h["ok"]] == []
    finally:
        await conn.close()

"""Migrations on a real, empty Postgres: the Supabase bootstrap plus every
migration apply cleanly, are recorded the way the supabase CLI records them,
and a second run (a restarted bridge) is a no-op."""

from __future__ import annotations

import asyncpg

from bridge.embedded import EmbeddedPostgres
from bridge.migrate import discover, prepare_database
from tests.conftest import SUPABASE_DIR, create_database


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
    finally:
        await conn.close()


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


async def test_outbox_is_published_for_supabase_realtime(
    pg_cluster: EmbeddedPostgres, template_db: str
) -> None:
    """The Realtime doorbell can subscribe to outbox inserts."""
    conn = await asyncpg.connect(pg_cluster.dsn_for(template_db))
    try:
        tables = await conn.fetch(
            "select schemaname || '.' || tablename as t from pg_publication_tables"
            " where pubname = 'supabase_realtime'"
        )
        assert [r["t"] for r in tables] == ["bridge.outbox"]
    finally:
        await conn.close()
